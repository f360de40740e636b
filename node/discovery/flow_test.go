package discovery

import (
	"context"
	"testing"
	"time"
)

// TestAliceBobThroughDHT: Alice's phone is registered only at S1, Bob's
// only at S2; S1 and S2 know only a third DHT node. They find each other
// through the DHT, show their statements, and messages flow both ways;
// then S1 restarts from its data directory with no bootstrap list, rejoins
// from the peers it saved, and messages keep flowing.
func TestAliceBobThroughDHT(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	boot := startSuperNode(t, t.TempDir(), fastConfig())
	alice, bob := newPhone(t, ch), newPhone(t, ch)
	s1dir := t.TempDir()
	s1 := startSuperNode(t, s1dir, fastConfig(info(boot.h)), alice.h.ID())
	s2 := startSuperNode(t, t.TempDir(), fastConfig(info(boot.h)), bob.h.ID())
	s1.serve(t, w.key)
	s2.serve(t, w.key)
	connectTo(t, alice.h, s1.h)
	connectTo(t, bob.h, s2.h)
	eventually(t, "S1 and S2 authorized each other", func() bool {
		return len(s1.disc.SyncPeers(ch)) == 1 && len(s2.disc.SyncPeers(ch)) == 1
	})
	if s1.disc.Authorized(boot.h.ID(), ch) {
		t.Fatal("the bootstrap node, which serves nothing, is authorized")
	}

	post := func(from *phone, to *phone, body string) {
		t.Helper()
		id, err := from.sync.Publish(context.Background(), w.seal(t, body))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, to.sub, id, body)
	}
	post(alice, bob, "hello Bob")
	post(bob, alice, "hello Alice")

	// Restart S1 from its data directory, without any bootstrap peer.
	s1.stop()
	s1 = startSuperNode(t, s1dir, fastConfig(), alice.h.ID())
	if got := s1.disc.Served(); len(got) != 1 || got[0] != ch {
		t.Fatalf("restarted S1 serves %v, want its saved statement for %s", got, short(ch))
	}
	connectTo(t, alice.h, s1.h)
	eventually(t, "restarted S1 rejoined and found S2", func() bool {
		return len(s1.disc.SyncPeers(ch)) == 1
	})
	post(alice, bob, "still there, Bob?")
	post(bob, alice, "yes, Alice")
}

// TestUnserveStopsShowing: a node that no longer serves a channel shows no
// statement for it, so a peer asking is refused.
func TestUnserveStopsShowing(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	a := startSuperNode(t, t.TempDir(), fastConfig())
	b := startSuperNode(t, t.TempDir(), fastConfig())
	a.serve(t, w.key)
	b.serve(t, w.key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.disc.Connect(ctx, info(b.h), ch); err != nil {
		t.Fatalf("Connect while both serve: %v", err)
	}
	b.disc.Unserve(ch)
	if b.disc.Authorized(b.h.ID(), ch) {
		t.Fatal("b still authorizes itself after Unserve")
	}
	c := startSuperNode(t, t.TempDir(), fastConfig())
	c.serve(t, w.key)
	if err := c.disc.Connect(ctx, info(b.h), ch); err == nil {
		t.Fatal("Connect to a node that stopped serving succeeded")
	}
}
