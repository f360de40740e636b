package routing

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

func users(r *Registry) map[channel.IdentityKey]int {
	out := map[channel.IdentityKey]int{}
	for _, u := range r.Users() {
		out[u.Identity] = u.Hop
	}
	return out
}

// A node with capacity 3, its owner, friends at hops 1, 2 and 3 and a
// stranger: the lowest hops are served, the hop-3 friend is evicted and
// told why at once (it is connected), and the stranger is refused.
func TestCapacityServesLowestHopsAndEvictsConnected(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 3})
	owner, c1, c2, c3 := newClient(t, "owner", f.owner, nil), newClient(t, "f1", f.f1, f.c1),
		newClient(t, "f2", f.f2, f.c2), newClient(t, "f3", f.f3, f.c3)
	stranger := newClient(t, "stranger", nil, nil)
	var changes atomic.Int32
	n.r.OnChange(func() { changes.Add(1) })

	for i, c := range []*client{c3, c2, c1} {
		res := c.mustRegister(t, n, newChannelID(t))
		if want := 3 - i; res.Hop != want {
			t.Fatalf("%s registered at hop %d, want %d", c.name, res.Hop, want)
		}
		if res.Load != (Load{Registered: i + 1, Capacity: 3}) {
			t.Fatalf("%s: load %+v", c.name, res.Load)
		}
	}
	if got := changes.Load(); got != 3 {
		t.Fatalf("OnChange called %d times for 3 registrations", got)
	}
	if res := owner.mustRegister(t, n); res.Hop != 0 {
		t.Fatalf("owner at hop %d", res.Hop)
	}
	got := users(n.r)
	want := map[channel.IdentityKey]int{f.owner.Public(): 0, f.f1.Public(): 1, f.f2.Public(): 2}
	if !mapsEqual(got, want) {
		t.Fatalf("served %v, want owner, f1, f2", got)
	}
	select {
	case nt := <-c3.notices:
		if nt.Status != StatusEvicted || nt.Node != n.h.ID() || !strings.Contains(nt.Detail, "hop 0") {
			t.Fatalf("notice %+v, want evicted by node %s for a hop-0 registration", nt, n.h.ID())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("evicted hop-3 friend got no notice while connected")
	}
	// Delivered at once, so it is not told again: at its next Register the
	// node is simply full.
	testkit.Eventually(t, "notice receipt", func() bool { _, ok := n.r.pendingFor(f.f3.Public()); return !ok })
	_, err := c3.register(t, n)
	if re := refusal(t, "f3 again", err); re.Status != StatusFull {
		t.Fatalf("f3 again: %v, want full", re)
	}
	_, err = stranger.register(t, n)
	if re := refusal(t, "stranger", err); re.Status != StatusNotAllowed {
		t.Fatalf("stranger: %v, want not allowed", re)
	}
	if users := n.r.Users(); users[0].Identity != f.owner.Public() || users[2].SponsoredBy != f.f1.Public() {
		t.Fatalf("Users order/sponsor wrong: %+v", users)
	}
}

// The hop-3 friend is not connected when it is evicted: it is told at its
// next Register, once.
func TestEvictedToldAtNextRegister(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 3})
	owner, c1, c2 := newClient(t, "owner", f.owner, nil), newClient(t, "f1", f.f1, f.c1), newClient(t, "f2", f.f2, f.c2)
	c3 := &client{name: "f3", id: f.f3, chain: f.c3, h: newHost(t)} // no notice handler
	for _, c := range []*client{c3, c2, c1} {
		c.mustRegister(t, n)
	}
	disconnect(t, n.h, c3.h)
	owner.mustRegister(t, n)
	if _, ok := users(n.r)[f.f3.Public()]; ok {
		t.Fatal("f3 still served")
	}
	if _, ok := n.r.pendingFor(f.f3.Public()); !ok {
		t.Fatal("no pending notice for the disconnected f3")
	}
	_, err := c3.register(t, n)
	re := refusal(t, "f3", err)
	if re.Status != StatusEvicted || !strings.Contains(re.Detail, "evicted by a registration at hop 0") {
		t.Fatalf("f3 at next Register: %v, want evicted with the reason", re)
	}
	_, err = c3.register(t, n)
	if re := refusal(t, "f3 again", err); re.Status != StatusFull {
		t.Fatalf("f3 told twice: %v", re)
	}
}

func TestStrangerAndHopInfinity(t *testing.T) {
	tests := []struct {
		name       string
		owner      bool
		allow      bool
		wantStatus Status // 0: accepted at hop infinity
	}{
		{"refused by default", true, false, StatusNotAllowed},
		{"accepted when allowed", true, true, 0},
		{"no owner, refused", false, false, StatusNotAllowed},
		{"no owner, allowed", false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AllowInfinity: tt.allow}
			if tt.owner {
				cfg.Owner = newIdentity(t).Public()
			}
			n := startNode(t, "", cfg)
			s := newClient(t, "stranger", nil, nil)
			res, err := s.register(t, n, newChannelID(t))
			if tt.wantStatus != 0 {
				if re := refusal(t, "stranger", err); re.Status != tt.wantStatus {
					t.Fatalf("%v, want %s", re, tt.wantStatus)
				}
				return
			}
			if err != nil || res.Hop != HopInfinity {
				t.Fatalf("got %+v, %v; want hop infinity", res, err)
			}
		})
	}
}

// A stranger is served while there is room and is the first to go.
func TestStrangerEvictedFirst(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 2, AllowInfinity: true})
	s1, s2 := newClient(t, "s1", nil, nil), newClient(t, "s2", nil, nil)
	s1.mustRegister(t, n)
	s2.mustRegister(t, n)
	newClient(t, "f3", f.f3, f.c3).mustRegister(t, n)
	// Among equals the newest goes first.
	if got := users(n.r); len(got) != 2 || got[s1.id.Public()] != HopInfinity || got[f.f3.Public()] != 3 {
		t.Fatalf("served %v, want s1 (older stranger) and f3", got)
	}
}

// Revoking a friend removes the friends that friend sponsored, tells them,
// and refuses their chains from then on.
func TestRevokeRemovesSponsored(t *testing.T) {
	f := newFriends(t)
	g1 := newIdentity(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 10})
	cs := []*client{newClient(t, "owner", f.owner, nil), newClient(t, "f1", f.f1, f.c1),
		newClient(t, "f2", f.f2, f.c2), newClient(t, "f3", f.f3, f.c3),
		newClient(t, "g1", g1, Chain{issue(t, f.owner, g1.Public(), 1, time.Now().Add(time.Hour))})}
	chs := []channel.ID{newChannelID(t), newChannelID(t)}
	for i, c := range cs {
		c.mustRegister(t, n, chs[i%2])
	}
	if got := n.r.Channels(); len(got) != 2 {
		t.Fatalf("Channels %d, want 2", len(got))
	}
	removed, err := n.r.Revoke(f.f1.Public())
	if err != nil {
		t.Fatal(err)
	}
	want := []channel.IdentityKey{f.f1.Public(), f.f2.Public(), f.f3.Public()}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want f1, f2, f3", removed)
	}
	if got := users(n.r); !mapsEqual(got, map[channel.IdentityKey]int{f.owner.Public(): 0, g1.Public(): 1}) {
		t.Fatalf("left %v, want owner and g1", got)
	}
	for _, c := range cs[1:4] {
		select {
		case nt := <-c.notices:
			if nt.Status != StatusRevoked {
				t.Fatalf("%s notice %+v", c.name, nt)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s got no revocation notice", c.name)
		}
		_, err := c.register(t, n)
		if re := refusal(t, c.name, err); re.Status != StatusRevoked {
			t.Fatalf("%s after revocation: %v, want revoked", c.name, re)
		}
	}
	// A fresh ticket from the revoked friend is refused too.
	h := newIdentity(t)
	hc := newClient(t, "h", h, append(append(Chain{}, f.c1...), issue(t, f.f1, h.Public(), 2, time.Now().Add(time.Hour))))
	_, err = hc.register(t, n)
	if re := refusal(t, "h", err); re.Status != StatusRevoked || !strings.Contains(re.Detail, f.f1.Public().String()) {
		t.Fatalf("new chain through revoked f1: %v", re)
	}
	if _, err := n.r.Revoke(f.owner.Public()); err != ErrRevokeOwner {
		t.Fatalf("revoking the owner: %v", err)
	}
}

// A forged ticket, an expired ticket, a chain that does not lead to the
// owner and a ticket for another identity are each refused with a clear
// reason, by Verify and over the wire.
func TestChainRefusals(t *testing.T) {
	f := newFriends(t)
	mallory, other := newIdentity(t), newIdentity(t)
	later := time.Now().Add(time.Hour)

	forged := issue(t, mallory, f.f1.Public(), 1, later)
	forged.Issuer = f.owner.Public() // claims the owner signed it
	expired := issue(t, f.owner, f.f1.Public(), 1, time.Now().Add(-time.Minute))
	tooLong := Chain{}
	prev := f.owner
	for i := 1; i <= MaxHop+1; i++ {
		next := newIdentity(t)
		tooLong = append(tooLong, issue(t, prev, next.Public(), min(i, MaxHop), later))
		prev = next
	}
	tests := []struct {
		name    string
		chain   Chain
		subject *channel.Identity
		want    error
		status  Status // over the wire; 0: not sendable (the decoder refuses it)
	}{
		{"forged ticket", Chain{forged}, f.f1, ErrForgedTicket, StatusBadChain},
		{"expired ticket", Chain{expired}, f.f1, ErrExpiredTicket, StatusBadChain},
		{"chain to another owner", Chain{issue(t, other, f.f1.Public(), 1, later)}, f.f1, ErrChainNotToOwner, StatusBadChain},
		{"broken link", Chain{f.c1[0], issue(t, mallory, f.f2.Public(), 2, later)}, f.f2, ErrChainNotToOwner, StatusBadChain},
		{"wrong hop claimed", Chain{issue(t, f.owner, f.f1.Public(), 2, later)}, f.f1, ErrChainNotToOwner, StatusBadChain},
		{"ticket for another identity", f.c2, f.f3, ErrWrongSubject, StatusBadChain},
		{"expired in the middle", Chain{f.c1[0], issue(t, f.f1, f.f2.Public(), 2, time.Now().Add(-time.Second))}, f.f2, ErrExpiredTicket, StatusBadChain},
		{"too far", tooLong, prev, ErrHopTooFar, 0},
	}
	n := startNode(t, "", Config{Owner: f.owner.Public()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.chain.Verify(f.owner.Public(), tt.subject.Public(), time.Now())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if tt.status == 0 {
				return
			}
			_, err = newClient(t, tt.name, tt.subject, tt.chain).register(t, n)
			re := refusal(t, tt.name, err)
			if re.Status != tt.status || !strings.Contains(re.Detail, tt.want.Error()) {
				t.Fatalf("over the wire: %v, want %s naming %q", re, tt.status, tt.want)
			}
		})
	}
	// The good chains verify, at their hops.
	for hop, c := range []Chain{nil, f.c1, f.c2, f.c3} {
		subject := []*channel.Identity{f.owner, f.f1, f.f2, f.f3}[hop]
		if got, err := c.Verify(f.owner.Public(), subject.Public(), time.Now()); err != nil || got != hop {
			t.Fatalf("hop %d chain: %d, %v", hop, got, err)
		}
	}
}

func TestQuotaAndRateLimit(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), MaxChannels: 2, RequestsPerMinute: 1, RequestBurst: 2})
	c := newClient(t, "f1", f.f1, f.c1)
	_, err := c.register(t, n, newChannelID(t), newChannelID(t), newChannelID(t))
	if re := refusal(t, "3 channels", err); re.Status != StatusQuotaExceeded {
		t.Fatalf("3 channels: %v", re)
	}
	c.mustRegister(t, n, newChannelID(t), newChannelID(t))
	_, err = c.register(t, n)
	if re := refusal(t, "third request", err); re.Status != StatusRateLimited {
		t.Fatalf("third request in a minute: %v", re)
	}
	// Another device is not limited by f1's requests.
	newClient(t, "f2", f.f2, f.c2).mustRegister(t, n)
}

// Registrations expire after TTL, and never outlive the chain's tickets.
func TestExpiry(t *testing.T) {
	f := newFriends(t)
	var clk testkit.OffsetClock
	n := startNode(t, "", Config{Owner: f.owner.Public(), TTL: time.Hour, Now: clk.Now})
	short := newIdentity(t)
	end := time.Now().Add(30 * time.Minute)
	sc := newClient(t, "short", short, Chain{issue(t, f.owner, short.Public(), 1, end)})
	if res := sc.mustRegister(t, n); !res.Expires.Equal(time.UnixMilli(end.UnixMilli())) {
		t.Fatalf("expires %v, want the ticket's end %v", res.Expires, end)
	}
	if res := newClient(t, "f1", f.f1, f.c1).mustRegister(t, n); time.Until(res.Expires) > time.Hour {
		t.Fatalf("expires %v, beyond TTL", res.Expires)
	}
	var changes atomic.Int32
	n.r.OnChange(func() { changes.Add(1) })
	clk.Advance(45 * time.Minute)
	if got := users(n.r); len(got) != 1 || got[f.f1.Public()] != 1 {
		t.Fatalf("after 45m: %v, want only f1", got)
	}
	clk.Advance(time.Hour)
	if got := n.r.Users(); len(got) != 0 {
		t.Fatalf("after TTL: %v", got)
	}
	if changes.Load() != 2 {
		t.Fatalf("OnChange called %d times for 2 expiries", changes.Load())
	}
}

// Registrations, revocations and undelivered notices survive a restart.
func TestPersistence(t *testing.T) {
	f := newFriends(t)
	g1 := newIdentity(t)
	cfg := Config{Owner: f.owner.Public(), Capacity: 3}
	n := startNode(t, "", cfg)
	ch := newChannelID(t)
	c1, c2 := newClient(t, "f1", f.f1, f.c1), newClient(t, "f2", f.f2, f.c2)
	c3 := &client{name: "f3", id: f.f3, chain: f.c3, h: newHost(t)}
	gc := newClient(t, "g1", g1, Chain{issue(t, f.owner, g1.Public(), 1, time.Now().Add(time.Hour))})
	x := newIdentity(t)
	xc := newClient(t, "x", x, Chain{issue(t, f.owner, x.Public(), 1, time.Now().Add(time.Hour))})
	c3.mustRegister(t, n)
	c2.mustRegister(t, n, ch)
	gc.mustRegister(t, n)
	disconnect(t, n.h, c3.h)
	c1.mustRegister(t, n, ch) // evicts f3, who is not connected
	if _, err := n.r.Revoke(x.Public()); err != nil {
		t.Fatal(err)
	}
	before := n.r.Users()
	n.stop()

	n2 := startNode(t, n.path, cfg)
	after := n2.r.Users()
	if len(after) != 3 || len(before) != 3 {
		t.Fatalf("before %d, after %d registrations, want 3", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Identity != b.Identity || a.Peer != b.Peer || a.Hop != b.Hop || !slices.Equal(a.Channels, b.Channels) ||
			!a.Since.Equal(b.Since) || !a.Expires.Equal(b.Expires) || a.SponsoredBy != b.SponsoredBy {
			t.Fatalf("registration %d changed across restart:\n%+v\n%+v", i, b, a)
		}
	}
	if got := n2.r.Channels(); !slices.Equal(got, []channel.ID{ch}) {
		t.Fatalf("Channels after restart: %v", got)
	}
	_, err := xc.register(t, n2)
	if re := refusal(t, "revoked x", err); re.Status != StatusRevoked {
		t.Fatalf("revocation lost: %v", re)
	}
	_, err = c3.register(t, n2)
	if re := refusal(t, "f3", err); re.Status != StatusEvicted {
		t.Fatalf("pending notice lost: %v", re)
	}
	// Re-paired to another owner: the old friend graph is dropped.
	n2.stop()
	n3 := startNode(t, n.path, Config{Owner: newIdentity(t).Public()})
	if got := n3.r.Users(); len(got) != 0 {
		t.Fatalf("registrations under a new owner: %+v", got)
	}
}

func TestSetOwner(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{})
	c1 := newClient(t, "f1", f.f1, f.c1)
	_, err := c1.register(t, n)
	if re := refusal(t, "before pairing", err); re.Status != StatusBadChain {
		t.Fatalf("before pairing: %v", re)
	}
	var changes atomic.Int32
	n.r.OnChange(func() { changes.Add(1) })
	if err := n.r.SetOwner(f.owner.Public()); err != nil {
		t.Fatal(err)
	}
	c1.mustRegister(t, n)
	if err := n.r.SetOwner(newIdentity(t).Public()); err != nil {
		t.Fatal(err)
	}
	if got := n.r.Users(); len(got) != 0 || changes.Load() != 2 {
		t.Fatalf("after re-pairing: %v, %d changes", got, changes.Load())
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// An unreadable record is dropped with a warning; the others are kept.
func TestBadRecordDropped(t *testing.T) {
	f := newFriends(t)
	cfg := Config{Owner: f.owner.Public()}
	n := startNode(t, "", cfg)
	newClient(t, "f1", f.f1, f.c1).mustRegister(t, n)
	n.stop()

	bad := recKey(keyReg, f.f2.Public())
	n3 := startNodeWith(t, n.path, cfg, func(m Records) {
		if err := m.Put(bad, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
	})
	if got := users(n3.r); !mapsEqual(got, map[channel.IdentityKey]int{f.f1.Public(): 1}) {
		t.Fatalf("after a bad record: %v", got)
	}
	if _, err := n3.db.Meta("registrations").Get(bad); err == nil {
		t.Fatal("bad record kept")
	}
	if !strings.Contains(n3.logs.String(), "unreadable registration record") {
		t.Fatal("bad record not logged")
	}
}
