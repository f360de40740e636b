package routing

import (
	"path/filepath"
	"testing"
)

func TestResetForgetsEverything(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 5})
	owner := newClient(t, "owner", f.owner, nil)
	friend := newClient(t, "f1", f.f1, f.c1)
	ch := newChannelID(t)
	owner.mustRegister(t, n, ch)
	friend.mustRegister(t, n, ch)
	if _, err := n.r.Revoke(f.f3.Public()); err != nil {
		t.Logf("revoking an unregistered identity: %v", err)
	}
	if got := len(n.r.Users()); got != 2 {
		t.Fatalf("%d users before reset", got)
	}
	changed := make(chan struct{}, 4)
	n.r.OnChange(func() { changed <- struct{}{} })
	for range 2 { // idempotent: a reset cut by a power cut runs again
		if err := n.r.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(n.r.Users()); got != 0 || len(n.r.Channels()) != 0 {
		t.Fatalf("after reset: %d users, %d channels", got, len(n.r.Channels()))
	}
	select {
	case <-changed:
	default:
		t.Fatal("no change notification")
	}
	left := 0
	n.db.Meta("registrations").ForEach(func(k, v []byte) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d records left after reset", left)
	}
	// The old owner is no longer hop 0, nor is its friend served.
	refusal(t, "old owner", func() error { _, err := owner.register(t, n, ch); return err }())
	refusal(t, "old friend", func() error { _, err := friend.register(t, n, ch); return err }())
	// A new owner works.
	if err := n.r.SetOwner(f.f2.Public()); err != nil {
		t.Fatal(err)
	}
	newOwner := newClient(t, "new owner", f.f2, nil)
	if res := newOwner.mustRegister(t, n, ch); res.Hop != 0 {
		t.Fatalf("new owner at hop %d", res.Hop)
	}
}

func TestRegistered(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public()})
	owner := newClient(t, "owner", f.owner, nil)
	stranger := newClient(t, "stranger", nil, nil)
	if n.r.Registered(owner.h.ID()) {
		t.Fatal("registered before registering")
	}
	owner.mustRegister(t, n, newChannelID(t))
	if !n.r.Registered(owner.h.ID()) || n.r.Registered(stranger.h.ID()) {
		t.Fatal("Registered does not follow the registrations")
	}
	n.r.Reset()
	if n.r.Registered(owner.h.ID()) {
		t.Fatal("still registered after reset")
	}
}

// TestDevicesOfOneIdentity: the same identity registering from a second
// and third device (paper §4.7) keeps the earlier devices served, across
// a restart; revoking or resetting ends them all.
func TestDevicesOfOneIdentity(t *testing.T) {
	f := newFriends(t)
	path := filepath.Join(t.TempDir(), "node.db")
	n := startNode(t, path, Config{Owner: f.owner.Public()})
	ch := newChannelID(t)
	phone := newClient(t, "phone", f.f1, f.c1)
	tablet := newClient(t, "tablet", f.f1, f.c1)
	laptop := newClient(t, "laptop", f.f1, f.c1)
	for _, d := range []*client{phone, tablet, laptop} {
		d.mustRegister(t, n, ch)
	}
	check := func(r *Registry, want bool) {
		t.Helper()
		for _, d := range []*client{phone, tablet, laptop} {
			if got := r.Registered(d.h.ID()); got != want {
				t.Fatalf("%s registered = %v, want %v", d.name, got, want)
			}
		}
	}
	check(n.r, true)
	if got := len(n.r.Users()); got != 1 {
		t.Fatalf("%d registrations for one identity", got)
	}
	n.stop()
	n2 := startNode(t, path, Config{Owner: f.owner.Public()})
	check(n2.r, true)
	if _, err := n2.r.Revoke(f.f1.Public()); err != nil {
		t.Fatal(err)
	}
	check(n2.r, false)
}
