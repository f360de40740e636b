package discovery

import (
	"testing"
	"time"
)

// TestLookupBackoff: fruitless lookups are spaced out, doubling from the
// minimum up to the cap; a lost peer or a fruitful lookup make the next
// one due at once; unreachable super nodes push it to their retry time.
func TestLookupBackoff(t *testing.T) {
	lo, hi := time.Minute, time.Hour
	var w lookupWait
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if !w.due(1, t0) {
		t.Fatal("a channel never looked up is not due")
	}
	now := t0
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		w.done(false, 1, time.Time{}, now, lo, hi)
		want *= time.Minute
		if w.due(1, now.Add(want-time.Second)) {
			t.Fatalf("due %v after a fruitless lookup, want a wait of %v", want-time.Second, want)
		}
		if !w.due(1, now.Add(want)) {
			t.Fatalf("not due after the wait of %v", want)
		}
		now = now.Add(want)
	}
	var other lookupWait
	if !other.due(0, now) {
		t.Fatal("another channel waits for this one's backoff")
	}
	w.done(false, 2, time.Time{}, now, lo, hi)
	if w.due(2, now) || w.due(3, now) {
		t.Fatal("due right after a fruitless lookup, with as many peers or more")
	}
	if !w.due(1, now) {
		t.Fatal("a peer was lost since the lookup, yet it is not due")
	}
	// The loss reset the wait: the next fruitless lookup waits the minimum.
	w.done(false, 1, time.Time{}, now, lo, hi)
	if !w.due(1, now.Add(lo)) {
		t.Fatal("after a loss the wait did not start again from the minimum")
	}
	// Unreachable super nodes that may be dialled again only in 10
	// minutes: no lookup before then, even if the doubled wait is shorter.
	w.done(false, 1, now.Add(10*time.Minute), now, lo, hi)
	if w.due(1, now.Add(10*time.Minute-time.Second)) || !w.due(1, now.Add(10*time.Minute)) {
		t.Fatal("a lookup that found unreachable super nodes is not due exactly when they may be tried again")
	}
	// ... and a retry time before the doubled wait does not shorten it.
	w.done(false, 1, now.Add(time.Second), now, lo, hi)
	if w.due(1, now.Add(4*time.Minute-time.Second)) {
		t.Fatal("an early retry time shortened the doubled wait")
	}
	w.done(true, 1, time.Time{}, now, lo, hi)
	if !w.due(1, now) {
		t.Fatal("not due after a lookup that found someone")
	}
	w.done(false, 1, time.Time{}, now, lo, hi)
	if !w.due(1, now.Add(lo)) {
		t.Fatal("after a fruitful lookup the wait did not start again from the minimum")
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
	// after a fruitless lookup are 1, 2, 4, 8 intervals: at most 5
	// lookups in any 16 intervals, and one more if the first lookup
	// still found b as new.
	interval := a.disc.cfg.MaintainInterval
	before := a.disc.lookups.Load()
	time.Sleep(16 * interval)
	if n := a.disc.lookups.Load() - before; n > 6 {
		t.Fatalf("%d provider lookups in 16 intervals for a channel whose only other super node is connected; want at most 6", n)
	}
	before = a.disc.lookups.Load()
	b.stop()
	eventually(t, "a looked for super nodes again after losing b", func() bool {
		return a.disc.lookups.Load() > before
	})
}
