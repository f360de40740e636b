// Package bootenv reads and writes the boot state that Linux shares with
// the U-Boot boot script (image/boot.cmd): a small U-Boot environment of
// NAME=VALUE pairs kept as two copies in libubootenv's redundant format,
//
//	CRC32 (4 bytes, little-endian, over the data) | flags (1 byte) | data
//
// where data is NUL-terminated "NAME=VALUE" strings ended by an empty one
// and padded to the copy's size. The newer valid copy wins; a write goes to
// the other copy with flags one higher (mod 256), so a write torn by a power
// cut, or a flipped byte in one copy, leaves the last complete state in
// force. This is libubootenv's rule (fw_setenv and the script agree), with
// "newer" decided by serial-number arithmetic so the counter may wrap.
//
// The package knows the format and where the copies are; it must not know
// what the variables mean (slots, boot counts: package update), bundles,
// or the appliance.
package bootenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"
)

// The layout the image uses: two 16 KiB copies in the gap before the first
// partition (image/build.sh writes them, image/boot.cmd reads them).
const (
	DefaultSize    = 0x4000
	DefaultOffset0 = 0x100000
	DefaultOffset1 = 0x120000
	headerSize     = 5 // CRC and flags
)

// Sentinel errors.
var (
	// ErrBadCRC: a copy whose checksum does not match its data (torn,
	// flipped bits, never written).
	ErrBadCRC = errors.New("bootenv: bad CRC")
	// ErrMalformed: a copy with a valid CRC whose data is not
	// NAME=VALUE strings, or an environment that cannot be encoded.
	ErrMalformed = errors.New("bootenv: malformed environment")
	// ErrNoValidCopy: neither copy is valid.
	ErrNoValidCopy = errors.New("bootenv: no valid copy of the boot state")
)

// Env is a set of variables.
type Env map[string]string

// Clone returns a copy of e.
func (e Env) Clone() Env {
	c := make(Env, len(e))
	for k, v := range e {
		c[k] = v
	}
	return c
}

// Encode lays env out as one redundant copy of size bytes with the given
// flags. Names are written sorted, so equal environments encode equally.
func Encode(env Env, size int, flags byte) ([]byte, error) {
	if size <= headerSize+1 {
		return nil, fmt.Errorf("%w: size %d is too small", ErrMalformed, size)
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	var data bytes.Buffer
	for _, k := range names {
		v := env[k]
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: variable %q", ErrMalformed, k)
		}
		data.WriteString(k)
		data.WriteByte('=')
		data.WriteString(v)
		data.WriteByte(0)
	}
	data.WriteByte(0)
	if data.Len() > size-headerSize {
		return nil, fmt.Errorf("%w: %d bytes of variables do not fit in %d", ErrMalformed, data.Len(), size-headerSize)
	}
	b := make([]byte, size)
	copy(b[headerSize:], data.Bytes())
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[headerSize:]))
	b[4] = flags
	return b, nil
}

// Decode parses one redundant copy: its variables and flags.
func Decode(b []byte) (Env, byte, error) {
	if len(b) <= headerSize {
		return nil, 0, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if crc32.ChecksumIEEE(b[headerSize:]) != binary.LittleEndian.Uint32(b) {
		return nil, 0, ErrBadCRC
	}
	env := Env{}
	data := b[headerSize:]
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return nil, 0, fmt.Errorf("%w: unterminated variable", ErrMalformed)
		}
		if i == 0 {
			return env, b[4], nil
		}
		k, v, ok := strings.Cut(string(data[:i]), "=")
		if !ok || k == "" {
			return nil, 0, fmt.Errorf("%w: %q is not NAME=VALUE", ErrMalformed, data[:i])
		}
		env[k] = v
		data = data[i+1:]
	}
	return nil, 0, fmt.Errorf("%w: no end marker", ErrMalformed)
}

// Newer reports whether flags a is newer than flags b: a is one to 127
// steps ahead of b, counting mod 256.
func Newer(a, b byte) bool {
	d := a - b
	return d >= 1 && d <= 127
}

// Store is the pair of copies on a device or file.
type Store struct {
	Path    string   // block device (the boot disk) or file
	Offsets [2]int64 // where the copies are
	Size    int      // bytes per copy
}

// Default returns the image's layout on the disk at path.
func Default(path string) *Store {
	return &Store{Path: path, Offsets: [2]int64{DefaultOffset0, DefaultOffset1}, Size: DefaultSize}
}

// Copy is one copy as read.
type Copy struct {
	Env   Env
	Flags byte
	Err   error // nil when valid
}

// State is what Load found.
type State struct {
	Env     Env // the newer valid copy's variables
	Current int // which copy that is: 0 or 1
	Flags   byte
	Copies  [2]Copy
}

// Load reads both copies and returns the newer valid one. With neither
// valid it returns ErrNoValidCopy and the state with both copies' errors.
func (s *Store) Load() (State, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return State{}, fmt.Errorf("bootenv: %w", err)
	}
	defer f.Close()
	return s.load(f)
}

func (s *Store) load(f io.ReaderAt) (State, error) {
	var st State
	for i, off := range s.Offsets {
		b := make([]byte, s.Size)
		if _, err := f.ReadAt(b, off); err != nil {
			return State{}, fmt.Errorf("bootenv: read copy %d at %#x of %s: %w", i, off, s.Path, err)
		}
		env, flags, err := Decode(b)
		st.Copies[i] = Copy{Env: env, Flags: flags, Err: err}
	}
	c0, c1 := st.Copies[0], st.Copies[1]
	switch {
	case c0.Err != nil && c1.Err != nil:
		return st, fmt.Errorf("%w in %s (copy 0: %v; copy 1: %v)", ErrNoValidCopy, s.Path, c0.Err, c1.Err)
	case c0.Err != nil:
		st.Current = 1
	case c1.Err != nil:
		st.Current = 0
	case Newer(c1.Flags, c0.Flags):
		st.Current = 1
	default:
		st.Current = 0
	}
	st.Env = st.Copies[st.Current].Env.Clone()
	st.Flags = st.Copies[st.Current].Flags
	return st, nil
}

// Save writes env into the copy that is not current, with flags one
// higher than the current copy's, and syncs it: once Save returns, env is
// the boot state; if it is cut short, the previous one still is. With no
// valid copy (prev from a failed Load) it writes copy 0.
func (s *Store) Save(prev State, env Env) (State, error) {
	target, flags := 0, byte(0)
	if prev.Env != nil {
		target, flags = 1-prev.Current, prev.Flags+1
	}
	b, err := Encode(env, s.Size, flags)
	if err != nil {
		return prev, err
	}
	f, err := os.OpenFile(s.Path, os.O_WRONLY, 0)
	if err != nil {
		return prev, fmt.Errorf("bootenv: %w", err)
	}
	if _, err := f.WriteAt(b, s.Offsets[target]); err != nil {
		f.Close()
		return prev, fmt.Errorf("bootenv: write copy %d of %s: %w", target, s.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return prev, fmt.Errorf("bootenv: sync %s: %w", s.Path, err)
	}
	if err := f.Close(); err != nil {
		return prev, fmt.Errorf("bootenv: close %s: %w", s.Path, err)
	}
	next := State{Env: env.Clone(), Current: target, Flags: flags, Copies: prev.Copies}
	next.Copies[target] = Copy{Env: env.Clone(), Flags: flags}
	return next, nil
}

// Init writes both copies with env (flags 0 and 1): a new image's state.
func (s *Store) Init(env Env) error {
	f, err := os.OpenFile(s.Path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("bootenv: %w", err)
	}
	defer f.Close()
	for i, off := range s.Offsets {
		b, err := Encode(env, s.Size, byte(i))
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("bootenv: write copy %d of %s: %w", i, s.Path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("bootenv: sync %s: %w", s.Path, err)
	}
	return f.Close()
}
