package discovery

import (
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestLookupBackoff: fruitless lookups are spaced out, doubling up to the
// cap; a lost peer, a reset or another channel are due at once.
func TestLookupBackoff(t *testing.T) {
	b := newLookupBackoff(time.Minute, time.Hour)
	ch, other := channel.ID{1}, channel.ID{2}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if !b.due(ch, 1, t0) {
		t.Fatal("a channel never looked up is not due")
	}
	now := t0
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		b.fruitless(ch, 1, now)
		want *= time.Minute
		if b.due(ch, 1, now.Add(want-time.Second)) {
			t.Fatalf("due %v after a fruitless lookup, want a wait of %v", want-time.Second, want)
		}
		if !b.due(ch, 1, now.Add(want)) {
			t.Fatalf("not due after the wait of %v", want)
		}
		now = now.Add(want)
	}
	if !b.due(other, 0, now) {
		t.Fatal("another channel waits for this one's backoff")
	}
	b.fruitless(ch, 2, now)
	if b.due(ch, 2, now) || b.due(ch, 3, now) {
		t.Fatal("due right after a fruitless lookup, with as many peers or more")
	}
	if !b.due(ch, 1, now) {
		t.Fatal("a peer was lost since the lookup, yet it is not due")
	}
	// The loss reset the wait: the next fruitless lookup waits the minimum.
	b.fruitless(ch, 1, now)
	if !b.due(ch, 1, now.Add(time.Minute)) {
		t.Fatal("after a loss the wait did not start again from the minimum")
	}
	// Unreachable super nodes: due when the first may be tried again,
	// and the doubling starts again from the minimum after that.
	b.until(ch, 1, now.Add(10*time.Minute))
	if b.due(ch, 1, now.Add(10*time.Minute-time.Second)) || !b.due(ch, 1, now.Add(10*time.Minute)) {
		t.Fatal("a lookup that found unreachable super nodes is not due exactly when they may be tried again")
	}
	b.fruitless(ch, 1, now)
	if !b.due(ch, 1, now.Add(time.Minute)) {
		t.Fatal("a fruitless lookup after an unreachable one waits more than the minimum")
	}
	b.fruitless(ch, 1, now)
	b.reset(ch)
	if !b.due(ch, 1, now) {
		t.Fatal("not due after reset")
	}
	b.fruitless(ch, 1, now)
	b.fruitless(other, 1, now)
	b.resetAll()
	if !b.due(ch, 1, now) || !b.due(other, 1, now) {
		t.Fatal("not due after resetAll")
	}
}

// TestUpkeepStopsAskingForNoOne: two super nodes serve a channel (fewer
// than MinPeers exist). Once they are connected, the upkeep's lookups
// back off instead of running every interval; when the other node goes
// away, the next interval looks again.
func TestUpkeepStopsAskingForNoOne(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	boot := startSuperNode(t, t.TempDir(), fastConfig())
	a := startSuperNode(t, t.TempDir(), fastConfig(info(boot.h)))
	b := startSuperNode(t, t.TempDir(), fastConfig(info(boot.h)))
	a.serve(t, w.key)
	b.serve(t, w.key)
	eventually(t, "a and b authorized each other", func() bool {
		return len(a.disc.SyncPeers(ch)) == 1 && len(b.disc.SyncPeers(ch)) == 1
	})
	// 16 intervals: without the backoff, 16 lookups. With it, the waits
	// after the lookup that found b are 2, 4, 8 intervals: at most 4
	// lookups in any 16 intervals.
	interval := a.disc.cfg.MaintainInterval
	before := a.disc.lookups.Load()
	time.Sleep(16 * interval)
	if n := a.disc.lookups.Load() - before; n > 4 {
		t.Fatalf("%d provider lookups in 16 intervals for a channel whose only other super node is connected; want at most 4", n)
	}
	before = a.disc.lookups.Load()
	b.stop()
	eventually(t, "a looked for super nodes again after losing b", func() bool {
		return a.disc.lookups.Load() > before
	})
}
