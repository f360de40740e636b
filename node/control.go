package node

import (
	"sync"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// Control channels are those that carry no person's words: the owner's
// node channel (which the node follows), and the channels the owner's
// devices name as control in their serve list (the identity's master
// channel, dust channels of cover traffic). The node cannot tell them
// apart by their messages, which it cannot read; it is told, so that the
// status page counts what people wrote apart from them.
type controlSet struct {
	mu     sync.Mutex
	owner  channel.ID // the followed node channel; zero when none
	listed map[channel.ID]bool
	at     int64 // the serve list's time, so an older list never wins
}

func (c *controlSet) follow(owner channel.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owner, c.listed, c.at = owner, nil, 0
}

func (c *controlSet) forget() { c.follow(channel.ID{}) }

// update takes the control IDs of a serve list; malformed IDs are
// skipped.
func (c *controlSet) update(l control.ServeList) {
	ids := map[channel.ID]bool{}
	for _, s := range l.Control {
		if id, err := channel.ParseID(s); err == nil {
			ids[id] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.At < c.at {
		return
	}
	c.listed, c.at = ids, l.At
}

// ControlChannels returns the channels this node knows to carry control
// traffic of its owner: the node channel it follows and the control
// channels the owner's latest serve list names.
func (n *Node) ControlChannels() map[channel.ID]bool {
	n.control.mu.Lock()
	defer n.control.mu.Unlock()
	out := make(map[channel.ID]bool, len(n.control.listed)+1)
	if n.control.owner != (channel.ID{}) {
		out[n.control.owner] = true
	}
	for id := range n.control.listed {
		out[id] = true
	}
	return out
}
