package peersync

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// wanting is the peers the node's index lists for ch.
func wanting(n *node, ch channel.ID) []peer.ID {
	var ps []peer.ID
	for _, ss := range n.svc.wanters.appendFor(ch, nil) {
		ps = append(ps, ss.peer)
	}
	slices.Sort(ps)
	return ps
}

func peers(ns ...*node) []peer.ID {
	var ps []peer.ID
	for _, n := range ns {
		ps = append(ps, n.h.ID())
	}
	slices.Sort(ps)
	return ps
}

// TestWantersFollowWants: the index announcements use lists exactly the
// sessions whose peers want a channel, through Hellos, Wants and Unwants,
// a session's end and the service's close.
func TestWantersFollowWants(t *testing.T) {
	a, b := newWriter(t), newWriter(t)
	n := newNode(t, nil)
	n.svc.Want(a.id(), b.id())
	l1 := newNode(t, nil, func(c *Config) { c.Light = true })
	l2 := newNode(t, nil, func(c *Config) { c.Light = true })
	full := newNode(t, nil)
	l1.svc.Want(a.id())
	l2.svc.Want(b.id())
	full.svc.Want(a.id(), b.id())
	for _, p := range []*node{l1, l2, full} {
		connect(t, p, n)
	}
	testkit.Eventually(t, "index after the Hellos", func() bool {
		return slices.Equal(wanting(n, a.id()), peers(l1, full)) && slices.Equal(wanting(n, b.id()), peers(l2, full))
	})

	l1.svc.Unwant(a.id())
	testkit.Eventually(t, "an Unwant leaves the index", func() bool { return slices.Equal(wanting(n, a.id()), peers(full)) })
	l1.svc.Want(b.id())
	testkit.Eventually(t, "a Want joins it", func() bool { return slices.Equal(wanting(n, b.id()), peers(l1, l2, full)) })

	disconnect(t, l2, n)
	testkit.Eventually(t, "an ended session leaves it", func() bool { return slices.Equal(wanting(n, b.id()), peers(l1, full)) })

	n.svc.Close()
	if c := n.svc.wanters.channels(); c != 0 {
		t.Fatalf("%d channels still indexed after Close", c)
	}
}

// channels is how many channels some session wants (for tests).
func (w *wanters) channels() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.by)
}
