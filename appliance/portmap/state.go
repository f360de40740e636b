package portmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// state is the small file that remembers the external port chosen for each
// internal port, so the node's external address survives restarts.
type state struct {
	Version       int               `json:"version"`
	ExternalPorts map[string]uint16 `json:"external_ports"`
}

func newState() state { return state{Version: 1, ExternalPorts: map[string]uint16{}} }

func (s state) get(key string) (uint16, bool) {
	p, ok := s.ExternalPorts[key]
	return p, ok && p != 0
}

func (s *state) set(key string, port uint16) { s.ExternalPorts[key] = port }

func loadState(path string) (state, error) {
	s := newState()
	if path == "" {
		return s, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("portmap: read state %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return newState(), fmt.Errorf("portmap: parse state %s: %w", path, err)
	}
	if s.Version != 1 {
		return newState(), fmt.Errorf("portmap: state %s has version %d, want 1", path, s.Version)
	}
	if s.ExternalPorts == nil {
		s.ExternalPorts = map[string]uint16{}
	}
	return s, nil
}

// save writes the file atomically (temp file, fsync, rename).
func (s state) save(path string) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".portmap-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
