package node

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// The owner's node channel (docs/DEVICES.md): the owner's devices post,
// in a channel derived from their identity, the list of channel IDs the
// home node should serve. The node holds only that channel's read-only
// key, so it learns IDs, never the read keys of the channels themselves.
const (
	controlServe   = byte('S')
	maxServeList   = 64 * 1024
	maxServeListID = 4096
)

// ErrNotReadOnly: FollowOwner wants a read-only key; a full key would
// let the node write in the owner's channel.
var ErrNotReadOnly = errors.New("node: owner channel key is not read-only")

// FollowOwner serves the node channel whose read-only key string is key
// and, from then on, every channel ID the owner's devices list in it.
// The node must be started.
func (n *Node) FollowOwner(key string) error {
	k, err := channel.ParseKey(key)
	if err != nil {
		return fmt.Errorf("node.FollowOwner: %w", err)
	}
	if k.CanWrite() || !k.CanRead() {
		return fmt.Errorf("node.FollowOwner: %w (%s)", ErrNotReadOnly, k.Capability())
	}
	n.mu.Lock()
	if !n.started || n.closed {
		n.mu.Unlock()
		return fmt.Errorf("node.FollowOwner: not running")
	}
	n.mu.Unlock()
	sub, unsub := n.Sync.Subscribe(256)
	n.Serve(k.ID())
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer unsub()
		for st := range sub {
			if st.Envelope.Channel != k.ID() {
				continue
			}
			m, err := k.Open(st.Envelope)
			if err != nil {
				n.log.Warn("owner channel: message does not open", "id", st.ID, "err", err)
				continue
			}
			ids, err := decodeServeList(m.Body)
			if err != nil {
				n.log.Warn("owner channel: bad serve list", "id", st.ID, "err", err)
				continue
			}
			n.serveNew(ids)
		}
	}()
	return nil
}

// serveNew serves the ids not served yet.
func (n *Node) serveNew(ids []channel.ID) {
	have := map[channel.ID]bool{}
	n.opMu.RLock()
	for _, id := range n.cfg.Channels {
		have[id] = true
	}
	n.opMu.RUnlock()
	var add []channel.ID
	for _, id := range ids {
		if !have[id] {
			add = append(add, id)
			have[id] = true
		}
	}
	if len(add) > 0 {
		n.log.Info("owner channel: serving", "channels", len(add))
		n.Serve(add...)
	}
}

// decodeServeList parses a node-channel control body: 'S' + JSON
// {"channels": [hex IDs]}.
func decodeServeList(b []byte) ([]channel.ID, error) {
	if len(b) < 2 || b[0] != controlServe || len(b) > maxServeList {
		return nil, fmt.Errorf("node: not a serve list (%d bytes)", len(b))
	}
	var l struct {
		Channels []string `json:"channels"`
	}
	if err := json.Unmarshal(b[1:], &l); err != nil {
		return nil, fmt.Errorf("node: serve list: %w", err)
	}
	if len(l.Channels) > maxServeListID {
		return nil, fmt.Errorf("node: serve list of %d channels, limit %d", len(l.Channels), maxServeListID)
	}
	out := make([]channel.ID, 0, len(l.Channels))
	for _, s := range l.Channels {
		id, err := channel.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("node: serve list: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}
