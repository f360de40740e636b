package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// The owner's node channel (docs/DEVICES.md): the owner's devices post,
// in a channel derived from their identity, the list of channel IDs the
// home node should serve. The node holds only that channel's read-only
// key, so it learns IDs, never the read keys of the channels themselves.
// The list's codec is node/control's (control.Serve).

// ErrNotReadOnly: FollowOwner wants a read-only key; a full key would
// let the node write in the owner's channel.
var ErrNotReadOnly = errors.New("node: owner channel key is not read-only")

// FollowOwner serves the node channel whose read-only key string is key
// and every channel ID the owner's devices list in it: those already
// stored (after a restart) and, from then on, each new list. Following
// another key, or ForgetOwner, stops following the previous one. The node
// must be started.
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
	n.ForgetOwner()
	n.control.follow(k.ID())
	ctx, cancel := context.WithCancel(context.Background())
	sub, unsub := n.Sync.Subscribe(256)
	n.followMu.Lock()
	n.followCancel = cancel
	n.followed = map[channel.ID]bool{}
	n.followMu.Unlock()
	n.serveNew([]channel.ID{k.ID()})

	// What the owner's devices listed before: the newest list stored.
	if hs, err := n.Store.Headers(k.ID(), 0, math.MaxInt64, 0); err == nil {
		for i := len(hs) - 1; i >= 0; i-- {
			if ids, ok := n.readServeList(k, hs[i].ID); ok {
				n.serveNew(ids)
				break
			}
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer unsub()
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-sub:
				if !ok {
					return
				}
				if st.Envelope.Channel != k.ID() {
					continue
				}
				if ids, ok := n.openServeList(k, st.ID, st.Envelope); ok {
					n.serveNew(ids)
				}
			}
		}
	}()
	return nil
}

// ForgetOwner stops following the owner's node channel and stops serving
// what it listed (a factory reset).
func (n *Node) ForgetOwner() {
	n.followMu.Lock()
	cancel, followed := n.followCancel, n.followed
	n.followCancel, n.followed = nil, nil
	n.followMu.Unlock()
	n.control.forget()
	if cancel == nil {
		return
	}
	cancel()
	n.opMu.Lock()
	n.cfg.Channels = slices.DeleteFunc(n.cfg.Channels, func(ch channel.ID) bool { return followed[ch] })
	n.opMu.Unlock()
	n.serveRegistered()
}

func (n *Node) readServeList(k *channel.Key, id channel.MessageID) ([]channel.ID, bool) {
	e, err := n.Store.Get(id)
	if err != nil {
		return nil, false
	}
	return n.openServeList(k, id, e)
}

func (n *Node) openServeList(k *channel.Key, id channel.MessageID, e *channel.Envelope) ([]channel.ID, bool) {
	m, err := k.Open(e)
	if err != nil {
		n.log.Warn("owner channel: message does not open", "id", id, "err", err)
		return nil, false
	}
	l, ids, err := decodeServeList(m.Body)
	if err != nil {
		n.log.Debug("owner channel: not a serve list", "id", id, "err", err)
		return nil, false
	}
	n.control.update(l)
	return ids, true
}

// serveNew serves the ids not served yet and remembers them as the
// owner's.
func (n *Node) serveNew(ids []channel.ID) {
	have := map[channel.ID]bool{}
	n.opMu.RLock()
	for _, id := range n.cfg.Channels {
		have[id] = true
	}
	n.opMu.RUnlock()
	var add []channel.ID
	n.followMu.Lock()
	for _, id := range ids {
		if n.followed != nil {
			n.followed[id] = true
		}
		if !have[id] {
			add = append(add, id)
			have[id] = true
		}
	}
	n.followMu.Unlock()
	if len(add) > 0 {
		n.log.Info("owner channel: serving", "channels", len(add))
		n.Serve(add...)
	}
}

// decodeServeList parses a node-channel control body (control.Serve) and
// its channel IDs; one bad ID refuses the list.
func decodeServeList(b []byte) (control.ServeList, []channel.ID, error) {
	l, err := control.DecodeServeList(b)
	if err != nil {
		return l, nil, fmt.Errorf("node: %w", err)
	}
	out := make([]channel.ID, 0, len(l.Channels))
	for _, s := range l.Channels {
		id, err := channel.ParseID(s)
		if err != nil {
			return l, nil, fmt.Errorf("node: serve list: %w", err)
		}
		out = append(out, id)
	}
	return l, out, nil
}
