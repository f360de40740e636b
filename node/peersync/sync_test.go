package peersync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// A line A–B–C: messages posted at either end reach the other end, and
// each body crosses each link exactly once.
func TestLineDelivery(t *testing.T) {
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	w := newWriter(t)
	for _, n := range []*node{a, b, c} {
		n.svc.Want(w.id())
	}
	connect(t, a, b)
	connect(t, b, c)
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(a, b) && sessionUp(b, c) })

	const n = 5
	var ids []channel.MessageID
	for i := range n {
		for _, src := range []*node{a, c} {
			id, err := src.svc.Publish(context.Background(), w.seal(t, fmt.Sprintf("msg %d", i), time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		testkit.Eventually(t, "delivery to every node", func() bool { return has(t, a, id) && has(t, b, id) && has(t, c, id) })
	}
	// B got n bodies from A and n from C; A and C got n each from B.
	links := []struct {
		name     string
		at, from *node
		want     uint64
	}{
		{"A->B", b, a, n}, {"C->B", b, c, n}, {"B->A", a, b, n}, {"B->C", c, b, n},
	}
	for _, l := range links {
		if got := l.at.svc.Stats(l.from.h.ID()).FramesIn["body"]; got != l.want {
			t.Errorf("%s: %d bodies, want %d", l.name, got, l.want)
		}
	}
}

// C is offline while messages are posted on both sides of it; after it
// reconnects, reconciliation brings it everything it missed, and gives B
// what C wrote while away.
func TestOfflineCatchUp(t *testing.T) {
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	w := newWriter(t)
	for _, n := range []*node{a, b, c} {
		n.svc.Want(w.id())
	}
	connect(t, a, b)
	connect(t, b, c)
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(a, b) && sessionUp(b, c) })
	before, err := a.svc.Publish(context.Background(), w.seal(t, "before", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "first message at C", func() bool { return has(t, c, before) })

	disconnect(t, c, b)
	testkit.Eventually(t, "C's session gone", func() bool { return c.svc.sessionFor(b.h.ID()) == nil && b.svc.sessionFor(c.h.ID()) == nil })
	var missed []channel.MessageID
	for i := range 40 {
		id, err := a.svc.Publish(context.Background(), w.seal(t, fmt.Sprintf("while C is away %d", i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, id)
	}
	own, err := c.svc.Publish(context.Background(), w.seal(t, "C wrote offline", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range missed {
		testkit.Eventually(t, "B has A's messages", func() bool { return has(t, b, id) })
	}
	if has(t, c, missed[0]) {
		t.Fatal("C got a message while disconnected")
	}

	connect(t, c, b)
	for _, id := range missed {
		testkit.Eventually(t, "C catches up", func() bool { return has(t, c, id) })
	}
	testkit.Eventually(t, "A gets C's offline message", func() bool { return has(t, a, own) })
	if got := count(t, c, w.id()); got != len(missed)+2 {
		t.Fatalf("C holds %d messages, want %d", got, len(missed)+2)
	}
}

// Messages older than retention are swept and never come back through
// reconciliation, while a fresh one still does.
func TestRetentionNotResynced(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	a, b, c := newNode(t, clk), newNode(t, clk), newNode(t, clk)
	w := newWriter(t)
	for _, n := range []*node{a, b, c} {
		n.svc.Want(w.id())
	}
	connect(t, a, b)
	testkit.Eventually(t, "A-B up", func() bool { return sessionUp(a, b) })
	var old []channel.MessageID
	for i := range 10 {
		id, err := a.svc.Publish(context.Background(), w.seal(t, fmt.Sprintf("old %d", i), clk.Now()))
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, id)
	}
	for _, id := range old {
		testkit.Eventually(t, "B has old messages", func() bool { return has(t, b, id) })
	}

	clk.Advance(7*24*time.Hour + time.Hour)
	for _, n := range []*node{a, b} {
		if removed, err := n.db.Sweep(); err != nil || removed != len(old) {
			t.Fatalf("sweep removed %d (%v), want %d", removed, err, len(old))
		}
	}
	fresh, err := a.svc.Publish(context.Background(), w.seal(t, "fresh", clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "B has the fresh message", func() bool { return has(t, b, fresh) })

	connect(t, c, b)
	testkit.Eventually(t, "C gets the fresh message by reconciliation", func() bool { return has(t, c, fresh) })
	for _, id := range old {
		if has(t, c, id) || has(t, b, id) {
			t.Fatalf("expired message %s came back", id)
		}
	}
	if got := count(t, c, w.id()); got != 1 {
		t.Fatalf("C holds %d messages, want 1", got)
	}
}

// Only peers that want a channel get its headers; a peer that starts
// wanting it later reconciles and gets the history.
func TestOnlyWantingPeersGetHeaders(t *testing.T) {
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	w1, w2 := newWriter(t), newWriter(t)
	a.svc.Want(w1.id())
	b.svc.Want(w1.id(), w2.id())
	c.svc.Want(w2.id())
	connect(t, a, b)
	connect(t, c, b)
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(a, b) && sessionUp(b, c) })

	id1, err := b.svc.Publish(context.Background(), w1.seal(t, "for channel 1", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	id2, err := b.svc.Publish(context.Background(), w2.seal(t, "for channel 2", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "A gets channel 1", func() bool { return has(t, a, id1) })
	testkit.Eventually(t, "C gets channel 2", func() bool { return has(t, c, id2) })
	if got := c.svc.Stats(b.h.ID()).FramesIn["announce"]; got != 1 {
		t.Fatalf("C got %d announcements, want 1 (channel 2 only)", got)
	}
	if got := a.svc.Stats(b.h.ID()).FramesIn["announce"]; got != 1 {
		t.Fatalf("A got %d announcements, want 1 (channel 1 only)", got)
	}
	if has(t, c, id1) || has(t, a, id2) {
		t.Fatal("a message reached a peer that does not want its channel")
	}

	c.svc.Want(w1.id())
	testkit.Eventually(t, "C reconciles channel 1 after wanting it", func() bool { return has(t, c, id1) })
}

// When the first announcer stalls, the body comes from the next one.
func TestFetchFallsBackWhenAnnouncerStalls(t *testing.T) {
	short := func(c *Config) { c.FetchTimeout = 300 * time.Millisecond }
	src, staller, good, c := newNode(t, nil, short), newNode(t, nil, short), newNode(t, nil, short), newNode(t, nil, short)
	w := newWriter(t)
	for _, n := range []*node{src, staller, good, c} {
		n.svc.Want(w.id())
	}
	connect(t, src, staller)
	connect(t, src, good)
	id, err := src.svc.Publish(context.Background(), w.seal(t, "stall me", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "both relays have it", func() bool { return has(t, staller, id) && has(t, good, id) })

	staller.svc.ignoreFetch.Store(true)
	connect(t, c, staller)
	testkit.Eventually(t, "C asked the staller", func() bool { return c.svc.Stats(staller.h.ID()).FramesOut["fetch"] > 0 })
	connect(t, c, good)
	testkit.Eventually(t, "C gets the body from the good relay", func() bool { return has(t, c, id) })
	if got := c.svc.Stats(good.h.ID()).FramesIn["body"]; got != 1 {
		t.Fatalf("%d bodies from the good relay, want 1", got)
	}
	if got := c.svc.Stats(staller.h.ID()).FramesIn["body"]; got != 0 {
		t.Fatalf("%d bodies from the staller, want 0", got)
	}
}

// A node catching up from two peers that both hold what it missed, and
// offer it at once (reconciles and announcements racing), fetches every
// body exactly once: an offer that arrives just after a body was stored
// must not start a second fetch.
func TestCatchUpFromTwoPeersFetchesOnce(t *testing.T) {
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	w := newWriter(t)
	for _, n := range []*node{a, b, c} {
		n.svc.Want(w.id())
	}
	connect(t, a, b)
	testkit.Eventually(t, "A-B session", func() bool { return sessionUp(a, b) })
	const missed = 400
	for i := range missed {
		if _, err := a.svc.Publish(context.Background(), w.seal(t, fmt.Sprintf("missed %d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "B holds everything", func() bool { return count(t, b, w.id()) == missed })
	connect(t, c, a)
	connect(t, c, b)
	testkit.Eventually(t, "C catches up", func() bool { return count(t, c, w.id()) == missed })
	bodies := c.svc.Stats(a.h.ID()).FramesIn["body"] + c.svc.Stats(b.h.ID()).FramesIn["body"]
	if bodies != missed {
		t.Fatalf("C received %d bodies for %d missed messages", bodies, missed)
	}
}
