package peersync

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestNoSessionWithoutAReason: a node that is the opener (the smaller
// peer ID) opens no session with a connected peer it has no reason to
// sync with (a DHT contact: Access.Opens false), so the peer gets no Hello
// and learns nothing of what the node serves. When the peer comes to be
// known (it proves a served channel), Resync opens the session, whose
// Hello lists only the channels the peer may sync here, and history
// older than the proof is reconciled.
func TestNoSessionWithoutAReason(t *testing.T) {
	shared, private := newWriter(t), newWriter(t)
	var known atomic.Bool
	var logs testkit.LogBuffer
	var self peer.ID
	n, x := orderedPair(t, func(c *Config) { // n is the opener
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Access = hooks{
			known: func(peer.ID) bool { return known.Load() },
			accept: func(p peer.ID, ch channel.ID) bool {
				return p == self || (known.Load() && ch == shared.id())
			},
		}
	}, nil)
	self = n.h.ID()
	n.svc.Want(shared.id(), private.id())
	x.svc.Want(shared.id(), private.id())
	ctx := context.Background()
	old := shared.seal(t, "posted before the peer proved anything", time.Now())
	if _, err := n.svc.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}

	connect(t, x, n)
	testkit.Eventually(t, "the opener decided not to open", func() bool {
		return strings.Contains(logs.String(), "no reason to sync with the peer yet")
	})
	if n.svc.sessionFor(x.h.ID()) != nil || x.svc.sessionFor(n.h.ID()) != nil {
		t.Fatal("a session with a peer the node has no reason to sync with")
	}

	known.Store(true)
	n.svc.Resync(x.h.ID(), shared.id())
	testkit.Eventually(t, "a session once the peer is known", func() bool { return sessionUp(n, x) })
	testkit.Eventually(t, "the older post reconciled", func() bool { return has(t, x, old.ID()) })
	ss := x.svc.sessionFor(n.h.ID())
	ss.mu.Lock()
	told := slices.Collect(func(yield func(channel.ID) bool) {
		for ch := range ss.wants {
			if !yield(ch) {
				return
			}
		}
	})
	ss.mu.Unlock()
	if len(told) != 1 || told[0] != shared.id() {
		t.Fatalf("the Hello listed %d channels (%v), want only the one the peer may sync", len(told), told)
	}
}
