package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Log messages of the drops, as the tests look for them.
const (
	logOwnerChanged  = `msg="registration dropped: the node's owner changed (re-paired)"`
	logRevoked       = `msg="registration dropped: identity revoked by the node's owner"`
	logSponsorRevokd = `msg="registration dropped: a sponsor in its ticket chain was revoked"`
	logExpired       = `msg="registration dropped: expired"`
)

// registeredStore leaves a store file behind in which a node owned by
// f.owner registered the owner (hop 0), f1 (hop 1) and f2 (hop 2), and
// returns its path.
func registeredStore(t *testing.T, f friends) string {
	t.Helper()
	n := startNode(t, "", Config{Owner: f.owner.Public()})
	newClient(t, "owner", f.owner, nil).mustRegister(t, n)
	newClient(t, "f1", f.f1, f.c1).mustRegister(t, n)
	newClient(t, "f2", f.f2, f.c2).mustRegister(t, n)
	if got := users(n.r); len(got) != 3 {
		t.Fatalf("before the restart: %v", got)
	}
	n.stop()
	return n.path
}

// dropLines returns the log lines that say the registration of id was
// dropped.
func dropLines(logs string, id channel.IdentityKey) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "registration dropped") && strings.Contains(l, "identity="+id.String()) {
			out = append(out, l)
		}
	}
	return out
}

// onDisk reports whether the registration record of id is in the store
// file of the stopped node at path.
func onDisk(t *testing.T, path string, id channel.IdentityKey) bool {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Meta("registrations").Get(recKey(keyReg, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestRestartKeepsOrDropsWithItsReason: a node restarted on its store file
// (a real bbolt file and its write-ahead log) serves again every
// registration that still leads to its owner, and drops the others with a
// log line that names the reason: re-paired, identity revoked, sponsor
// revoked, expired. What it drops is gone from the file; what it keeps is
// there for the next restart.
func TestRestartKeepsOrDropsWithItsReason(t *testing.T) {
	f := newFriends(t)
	other := newIdentity(t).Public()
	var late clock
	late.Advance(DefaultTTL + time.Hour)
	tests := []struct {
		name   string
		cfg    Config
		before func(Records)
		want   map[channel.IdentityKey]int
		drops  map[channel.IdentityKey]string // log message, and "sponsor=" for sponsor drops
	}{
		{name: "owner known at load", cfg: Config{Owner: f.owner.Public()},
			want: map[channel.IdentityKey]int{f.owner.Public(): 0, f.f1.Public(): 1, f.f2.Public(): 2}},
		{name: "re-paired to another owner", cfg: Config{Owner: other},
			want: map[channel.IdentityKey]int{},
			drops: map[channel.IdentityKey]string{f.owner.Public(): logOwnerChanged, f.f1.Public(): logOwnerChanged,
				f.f2.Public(): logOwnerChanged}},
		{name: "sponsor revoked", cfg: Config{Owner: f.owner.Public()},
			// A revocation whose drops a power cut interrupted.
			before: func(m Records) {
				if err := m.Put(recKey(keyRevoked, f.f1.Public()), []byte{1}); err != nil {
					t.Fatal(err)
				}
			},
			want:  map[channel.IdentityKey]int{f.owner.Public(): 0},
			drops: map[channel.IdentityKey]string{f.f1.Public(): logRevoked, f.f2.Public(): logSponsorRevokd}},
		{name: "expired while down", cfg: Config{Owner: f.owner.Public(), Now: late.Now},
			want: map[channel.IdentityKey]int{},
			drops: map[channel.IdentityKey]string{f.owner.Public(): logExpired, f.f1.Public(): logExpired,
				f.f2.Public(): logExpired}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := registeredStore(t, f)
			n := startNodeWith(t, path, tc.cfg, tc.before)
			if got := users(n.r); !mapsEqual(got, tc.want) {
				t.Fatalf("served after the restart: %v, want %v", got, tc.want)
			}
			logs := n.logs.String()
			for _, id := range []channel.IdentityKey{f.owner.Public(), f.f1.Public(), f.f2.Public()} {
				lines := dropLines(logs, id)
				want, dropped := tc.drops[id]
				switch {
				case !dropped && len(lines) > 0:
					t.Fatalf("%s kept, yet logged as dropped: %q", id, lines)
				case dropped && (len(lines) != 1 || !strings.Contains(lines[0], want)):
					t.Fatalf("%s dropped; log lines %q, want one with %s", id, lines, want)
				case want == logSponsorRevokd && !strings.Contains(lines[0], "sponsor="+f.f1.Public().String()):
					t.Fatalf("the sponsor drop does not name the revoked sponsor: %q", lines[0])
				}
			}
			n.stop()
			for _, id := range []channel.IdentityKey{f.owner.Public(), f.f1.Public(), f.f2.Public()} {
				_, kept := tc.want[id]
				if onDisk(t, path, id) != kept {
					t.Fatalf("record of %s on disk: %v, want %v", id, !kept, kept)
				}
			}
			// And once more: what was kept is kept again, silently.
			again := startNode(t, path, tc.cfg)
			if got := users(again.r); !mapsEqual(got, tc.want) {
				t.Fatalf("after a second restart: %v, want %v", got, tc.want)
			}
			if strings.Contains(again.logs.String(), "registration dropped") {
				t.Fatalf("second restart dropped something:\n%s", again.logs.String())
			}
		})
	}
}

// TestOwnerNotYetKnownHolds: a registry loaded before the caller knows the
// owner (Config.Owner zero) drops nothing: it holds the registrations,
// serving none of them, until SetOwner says whose node it is. Its owner's
// are served again; after a re-pairing they are dropped as an owner
// change; a revocation meanwhile drops the revoked branch.
func TestOwnerNotYetKnownHolds(t *testing.T) {
	f := newFriends(t)
	all := map[channel.IdentityKey]int{f.owner.Public(): 0, f.f1.Public(): 1, f.f2.Public(): 2}

	t.Run("owner set", func(t *testing.T) {
		path := registeredStore(t, f)
		n := startNode(t, path, Config{})
		if got := users(n.r); len(got) != 0 {
			t.Fatalf("served before the owner is known: %v", got)
		}
		c1 := newClient(t, "f1", f.f1, f.c1)
		if _, err := c1.register(t, n); err == nil {
			t.Fatal("a chain was accepted while the owner is not known")
		}
		if n.r.Registered(c1.h.ID()) {
			t.Fatal("a held registration's device counts as registered")
		}
		if strings.Contains(n.logs.String(), "registration dropped") {
			t.Fatalf("dropped before the owner is known:\n%s", n.logs.String())
		}
		changed := make(chan struct{}, 4)
		n.r.OnChange(func() { changed <- struct{}{} })
		if err := n.r.SetOwner(f.owner.Public()); err != nil {
			t.Fatal(err)
		}
		if got := users(n.r); !mapsEqual(got, all) {
			t.Fatalf("after SetOwner: %v, want %v", got, all)
		}
		select {
		case <-changed:
		default:
			t.Fatal("serving the held registrations did not call OnChange")
		}
		if strings.Contains(n.logs.String(), "registration dropped") {
			t.Fatalf("dropped after the owner was set:\n%s", n.logs.String())
		}
	})

	t.Run("re-paired", func(t *testing.T) {
		path := registeredStore(t, f)
		n := startNode(t, path, Config{})
		if err := n.r.SetOwner(newIdentity(t).Public()); err != nil {
			t.Fatal(err)
		}
		if got := users(n.r); len(got) != 0 {
			t.Fatalf("served under a new owner: %v", got)
		}
		for id := range all {
			if l := dropLines(n.logs.String(), id); len(l) != 1 || !strings.Contains(l[0], logOwnerChanged) {
				t.Fatalf("drop of %s logged as %q", id, l)
			}
		}
		n.stop()
		for id := range all {
			if onDisk(t, path, id) {
				t.Fatalf("record of %s kept after the re-pairing", id)
			}
		}
	})

	t.Run("revoked while held", func(t *testing.T) {
		path := registeredStore(t, f)
		n := startNode(t, path, Config{})
		removed, err := n.r.Revoke(f.f1.Public())
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) != 2 {
			t.Fatalf("Revoke removed %v, want f1 and f2", removed)
		}
		if l := dropLines(n.logs.String(), f.f2.Public()); len(l) != 1 || !strings.Contains(l[0], logSponsorRevokd) {
			t.Fatalf("f2's drop logged as %q", l)
		}
		if err := n.r.SetOwner(f.owner.Public()); err != nil {
			t.Fatal(err)
		}
		if got := users(n.r); !mapsEqual(got, map[channel.IdentityKey]int{f.owner.Public(): 0}) {
			t.Fatalf("after SetOwner: %v, want only the owner", got)
		}
	})

	t.Run("reset while held", func(t *testing.T) {
		path := registeredStore(t, f)
		n := startNode(t, path, Config{})
		if err := n.r.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := n.r.SetOwner(f.owner.Public()); err != nil {
			t.Fatal(err)
		}
		if got := users(n.r); len(got) != 0 {
			t.Fatalf("a factory reset left %v to serve", got)
		}
	})
}

// FuzzDecodeStoredReg: a registration record read back from the store
// file, whatever its bytes, decodes without a panic, and what decodes
// encodes to a record that decodes to the same registration.
func FuzzDecodeStoredReg(f *testing.F) {
	fr := newFriends(f)
	now := time.UnixMilli(time.Now().UnixMilli())
	p, q := newPeerID(f), newPeerID(f)
	for _, e := range []*entry{
		{Registration: Registration{Identity: fr.owner.Public(), Peer: p, Hop: 0, Since: now, Expires: now.Add(time.Hour)},
			root: fr.owner.Public(), last: now},
		{Registration: Registration{Identity: fr.f2.Public(), Peer: q, Hop: 2, Channels: []channel.ID{newChannelID(f)},
			Since: now, Expires: now.Add(time.Hour)}, path: []channel.IdentityKey{fr.owner.Public(), fr.f1.Public()},
			root: fr.owner.Public(), last: now, others: []peer.ID{p}},
		{Registration: Registration{Identity: fr.f3.Public(), Peer: q, Hop: HopInfinity, Since: now, Expires: now}},
	} {
		b, err := encodeStoredReg(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"peer":"","channels":["AAAA"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id := fr.f1.Public()
		e, err := decodeStoredReg(id, b)
		if err != nil {
			return
		}
		again, err := encodeStoredReg(e)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		e2, err := decodeStoredReg(id, again)
		if err != nil {
			t.Fatalf("a re-encoded record does not decode: %v", err)
		}
		if e2.Peer != e.Peer || e2.Hop != e.Hop || !slices.Equal(e2.Channels, e.Channels) || !e2.Since.Equal(e.Since) ||
			!e2.Expires.Equal(e.Expires) || !slices.Equal(e2.path, e.path) || e2.root != e.root || !e2.last.Equal(e.last) ||
			!slices.Equal(e2.others, e.others) || e2.SponsoredBy != e.SponsoredBy {
			t.Fatalf("record changed across a round trip:\n%+v\n%+v", e, e2)
		}
	})
}
