package peersync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestHeldCopyKeepsItsReason: a copy of a stored message skips the
// signature check, yet is refused for the reason it always was: a blocked
// channel or an expired timestamp still wins over "duplicate".
func TestHeldCopyKeepsItsReason(t *testing.T) {
	w := newWriter(t)
	clk := testkit.NewClock(time.Now())
	var blocked atomic.Bool
	b := newNode(t, clk, func(c *Config) {
		c.Access = hooks{accept: func(peer.ID, channel.ID) bool { return !blocked.Load() }}
	})
	x := newNode(t, nil)
	b.svc.Want(w.id())
	connect(t, x, b)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(b, x) })
	ctx := context.Background()
	msg := w.seal(t, "held", time.Now())
	if _, err := x.svc.PushTo(ctx, b.h.ID(), msg); err != nil {
		t.Fatalf("first push: %v", err)
	}
	steps := []struct {
		name   string
		before func()
		want   wirepb.Reason
	}{
		{"copy", func() {}, wirepb.Reason_REASON_DUPLICATE},
		{"copy in a blocked channel", func() { blocked.Store(true) }, wirepb.Reason_REASON_NOT_ACCEPTED},
		{"copy past the retention window", func() { blocked.Store(false); clk.Advance(8 * 24 * time.Hour) }, wirepb.Reason_REASON_EXPIRED},
	}
	for _, st := range steps {
		st.before()
		_, err := x.svc.PushTo(ctx, b.h.ID(), msg)
		var rj *RejectError
		if !errors.As(err, &rj) {
			t.Fatalf("%s: push: %v, want a RejectError", st.name, err)
		}
		if rj.Reason != st.want {
			t.Fatalf("%s: reason %s (%s), want %s", st.name, rj.Reason, rj.Detail, st.want)
		}
	}
}

// TestFetchWindow: the fetches B leaves unanswered with a stalled A are
// bounded by count and by announced bytes, a window always takes one
// fetch however large, and everything arrives once A answers again.
func TestFetchWindow(t *testing.T) {
	const n = 40
	size := newWriter(t).seal(t, "x", time.Now()).Size()
	tests := []struct {
		name     string
		opt      func(*Config)
		inFlight int
	}{
		{"bytes bound", func(c *Config) { c.FetchBytes = 3 * size }, 3},
		{"count bound", func(c *Config) { c.MaxInFlight = 5 }, 5},
		{"one body over the byte budget", func(c *Config) { c.FetchBytes = 1 }, 1},
		{"defaults", func(*Config) {}, n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWriter(t)
			a, b := newNode(t, nil), newNode(t, nil, tc.opt)
			a.svc.Want(w.id())
			b.svc.Want(w.id())
			connect(t, a, b)
			testkit.Eventually(t, "session up", func() bool { return sessionUp(a, b) })
			a.svc.ignoreFetch.Store(true)
			for i := range n {
				if _, err := a.svc.Publish(context.Background(), w.seal(t, fmt.Sprint("m", i), time.Now())); err != nil {
					t.Fatal(err)
				}
			}
			var got window
			testkit.Eventually(t, "B's window to A full", func() bool {
				b.svc.fetch.mu.Lock()
				got = b.svc.fetch.inflight[a.h.ID()]
				b.svc.fetch.mu.Unlock()
				return got.n == tc.inFlight
			})
			if got.bytes != got.n*size {
				t.Fatalf("window holds %d fetches of %d bytes, want %d bytes", got.n, got.bytes, got.n*size)
			}
			a.svc.ignoreFetch.Store(false)
			testkit.Eventually(t, "everything at B", func() bool { return count(t, b, w.id()) == n })
		})
	}
}

func TestIngestGate(t *testing.T) {
	done := make(chan struct{})
	tests := []struct {
		name          string
		max, maxBytes int
		sizes         []int // acquired in order; all fit
		next          int   // must wait
		releaseToFit  int   // index in sizes whose release lets next in
	}{
		{"count", 2, 1000, []int{10, 10}, 10, 0},
		{"bytes", 100, 1000, []int{600, 300}, 200, 0},
		{"larger than the budget goes alone", 100, 1000, []int{10}, 5000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newIngestGate(tc.max, tc.maxBytes)
			for _, s := range tc.sizes {
				if !g.acquire(s, done) {
					t.Fatal("acquire failed")
				}
			}
			got := make(chan bool, 1)
			go func() { got <- g.acquire(tc.next, done) }()
			select {
			case <-got:
				t.Fatal("acquire went past a full gate")
			case <-time.After(50 * time.Millisecond):
			}
			g.release(tc.sizes[tc.releaseToFit])
			if !<-got {
				t.Fatal("acquire failed after release")
			}
			g.release(tc.next)
			for i, s := range tc.sizes {
				if i != tc.releaseToFit {
					g.release(s)
				}
			}
			if g.n != 0 || g.bytes != 0 {
				t.Fatalf("gate not empty after every release: %d, %d bytes", g.n, g.bytes)
			}
		})
	}
	t.Run("closed session", func(t *testing.T) {
		g := newIngestGate(1, 10)
		g.acquire(1, done)
		closed := make(chan struct{})
		close(closed)
		if g.acquire(1, closed) {
			t.Fatal("acquire on a closed session succeeded")
		}
	})
}
