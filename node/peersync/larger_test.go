package peersync

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// TestLargerOpensWhenOnlyItKnowsThePeer: the smaller peer ID opens a
// pair's session, but only with a peer it knows. When only the larger
// knows the other (it was configured with it), the larger opens the
// session itself once OpenWait passed without one, and a post goes through
// both ways. Before, such a pair never synced.
func TestLargerOpensWhenOnlyItKnowsThePeer(t *testing.T) {
	w := newWriter(t)
	var logs testkit.LogBuffer
	small, large := orderedPair(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Access = hooks{known: func(peer.ID) bool { return false }} // knows nobody, serves w to all
	}, func(c *Config) {
		c.OpenWait = 100 * time.Millisecond
		c.Access = hooks{} // knows every peer
	})
	small.svc.Want(w.id())
	large.svc.Want(w.id())
	ctx := context.Background()
	before := w.seal(t, "posted before they met", time.Now())
	if _, err := small.svc.Publish(ctx, before); err != nil {
		t.Fatal(err)
	}
	connect(t, small, large)
	testkit.Eventually(t, "the smaller decided not to open", func() bool {
		return strings.Contains(logs.String(), "no reason to sync with the peer yet")
	})
	testkit.Eventually(t, "a session opened by the larger", func() bool { return sessionUp(small, large) })
	if ss := large.svc.sessionFor(small.h.ID()); ss.openedByPeer {
		t.Fatal("the larger's session was opened by the smaller, which knows nobody")
	}
	testkit.Eventually(t, "the older post reconciled", func() bool { return has(t, large, before.ID()) })
	after := w.seal(t, "posted by the larger", time.Now())
	if _, err := large.svc.Publish(ctx, after); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the larger's post reaches the smaller", func() bool { return has(t, small, after.ID()) })
}

// TestRacingOpensKeepTheSmallersStream: when both nodes of a pair open a
// session at once (the larger after OpenWait, just as the smaller's open
// arrives), both sides keep the stream the smaller peer ID opened and drop
// the other: one session, the same on both sides, through which posts
// go. Before, each side replaced its session with the stream that came
// second, so the two could close each other's and leave none.
func TestRacingOpensKeepTheSmallersStream(t *testing.T) {
	w := newWriter(t)
	var logs testkit.LogBuffer
	nobody := hooks{known: func(peer.ID) bool { return false }}
	small, large := orderedPair(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Access = nobody
	}, func(c *Config) { c.Access = nobody })
	small.svc.Want(w.id())
	large.svc.Want(w.id())
	connect(t, small, large)
	testkit.Eventually(t, "the smaller decided not to open", func() bool {
		return strings.Contains(logs.String(), "no reason to sync with the peer yet")
	})
	ctx := context.Background()
	for round := range 6 {
		var wg sync.WaitGroup
		for _, pair := range [][2]*node{{small, large}, {large, small}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				octx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, _ = pair[0].svc.open(octx, pair[1].h.ID())
			}()
		}
		wg.Wait()
		testkit.Eventually(t, "one session, the smaller's, on both sides", func() bool {
			a, b := small.svc.sessionFor(large.h.ID()), large.svc.sessionFor(small.h.ID())
			return a != nil && b != nil && !a.openedByPeer && b.openedByPeer &&
				syncStreams(small, large) == 1 && syncStreams(large, small) == 1 && sessionUp(small, large)
		})
		e := w.seal(t, "through the kept session "+string(rune('a'+round)), time.Now())
		if _, err := large.svc.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, "the post goes through the kept session", func() bool { return has(t, small, e.ID()) })
	}
}

// syncStreams counts a's open sync streams to b.
func syncStreams(a, b *node) int {
	n := 0
	for _, c := range a.h.Network().ConnsToPeer(b.h.ID()) {
		for _, st := range c.GetStreams() {
			if st.Protocol() == ProtocolID {
				n++
			}
		}
	}
	return n
}

// TestStrangerThatOpensLearnsOnlyWhatItNamed: a node that a peer it does
// not know opens a session to (a stranger that dialled it, or a node
// configured with it that it was not configured with) answers with a
// Hello listing only the channels both want, not every channel the
// stranger may sync here (a paired appliance serves its owner's channels
// by hand, open to every peer): what it serves stays unknown to the
// stranger beyond what it named. A channel the stranger comes to want
// later is told and reconciled then.
func TestStrangerThatOpensLearnsOnlyWhatItNamed(t *testing.T) {
	named, other := newWriter(t), newWriter(t)
	n := newNode(t, nil, func(c *Config) {
		c.Access = hooks{known: func(peer.ID) bool { return false }} // every channel open to all
	})
	x := newNode(t, nil, func(c *Config) { c.Access = hooks{known: func(peer.ID) bool { return false }} })
	n.svc.Want(named.id(), other.id())
	x.svc.Want(named.id())
	ctx := context.Background()
	old := other.seal(t, "in the channel the stranger did not name", time.Now())
	if _, err := n.svc.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}
	connect(t, x, n)
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := x.svc.open(octx, n.h.ID()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the session", func() bool { return sessionUp(x, n) })
	ss := x.svc.sessionFor(n.h.ID())
	if !ss.peerWants(named.id()) {
		t.Fatal("the node did not tell the channel both want")
	}
	if ss.peerWants(other.id()) {
		t.Fatal("the node told a stranger a channel it did not name")
	}
	e := named.seal(t, "in the named channel", time.Now())
	if _, err := n.svc.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the named channel's post reaches the stranger", func() bool { return has(t, x, e.ID()) })

	x.svc.Want(other.id())
	testkit.Eventually(t, "the other channel told and reconciled once the stranger wants it", func() bool {
		return ss.peerWants(other.id()) && has(t, x, old.ID())
	})
}
