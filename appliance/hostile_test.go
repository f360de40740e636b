package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// pairingURIFor forges what an attacker would try on a node that shows
// no QR code: the node's key and address with a random token.
func pairingURIFor(t *testing.T, app *Appliance) provisioning.URI {
	t.Helper()
	raw, err := app.node.Host.Peerstore().PubKey(app.node.Host.ID()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	u := provisioning.URI{NodeKey: ed25519.PublicKey(raw)}
	rand.Read(u.Token[:])
	for _, m := range app.node.Host.Addrs() {
		if a, ok := provisioning.AddrFromMultiaddr(m); ok {
			u.Addrs = append(u.Addrs, a)
		}
	}
	return u
}

// TestConfiguredOwnerIsNotPairable: started with owner = X, the node is
// owned by X from the start (no QR code, no URI), refuses pairing, serves
// X at hop 0, and after a factory reset is owned by X again, with X's old
// registration forgotten.
func TestConfiguredOwnerIsNotPairable(t *testing.T) {
	x, _ := channel.NewIdentity(rand.Reader)
	dir := t.TempDir()
	app, stop := startInProcess(t, func(cfg *Config) { cfg.Owner = x.Public().String(); cfg.DataDir = dir })
	ctx := context.Background()
	r, err := app.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Pairing.State != status.PairingOwned || r.Pairing.URI != "" || r.Pairing.Owner != x.Public().String() {
		t.Fatalf("pairing report of a configured node: %+v", r.Pairing)
	}

	phone, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	_, intruder, _ := ed25519.GenerateKey(rand.Reader)
	if err := provisioning.PairURI(ctx, phone, pairingURIFor(t, app), intruder); !errors.Is(err, provisioning.ErrNotWaiting) {
		t.Fatalf("pairing a node with a configured owner: %v, want ErrNotWaiting", err)
	}
	key, _ := channel.NewKey(rand.Reader)
	phone.Connect(ctx, peer.AddrInfo{ID: app.node.Host.ID(), Addrs: app.node.Host.Addrs()})
	res, err := routing.Register(ctx, phone, app.node.Host.ID(), x, nil, []channel.ID{key.ID()})
	if err != nil || res.Hop != 0 {
		t.Fatalf("the configured owner registering: %+v, %v", res, err)
	}
	intruderID, _ := channel.IdentityFromSeed(intruder.Seed())
	if _, err := routing.Register(ctx, phone, app.node.Host.ID(), intruderID, nil, nil); err == nil {
		t.Fatal("the would-be pairer registered")
	}

	// A restart keeps the owner and X's registration.
	stop()
	app, _ = startInProcess(t, func(cfg *Config) { cfg.Owner = x.Public().String(); cfg.DataDir = dir })
	if users, _ := app.Users(ctx); len(users) != 1 || users[0].Identity != x.Public().String() || users[0].Hop != 0 {
		t.Fatalf("after a restart: users %+v", users)
	}
	// A factory reset forgets the registration; X owns the node again.
	if err := app.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ = app.Report(ctx)
	if r.Pairing.State != status.PairingOwned || r.Pairing.URI != "" || r.Pairing.Owner != x.Public().String() {
		t.Fatalf("after a reset: %+v", r.Pairing)
	}
	if users, _ := app.Users(ctx); len(users) != 0 {
		t.Fatalf("after a reset: users %+v", users)
	}
	phone.Connect(ctx, peer.AddrInfo{ID: app.node.Host.ID(), Addrs: app.node.Host.Addrs()})
	if res, err := routing.Register(ctx, phone, app.node.Host.ID(), x, nil, []channel.ID{key.ID()}); err != nil || res.Hop != 0 {
		t.Fatalf("X registering after the reset: %+v, %v", res, err)
	}
}

// TestBlockAndRevokeFreeStorage: blocking a channel deletes what it
// stored; revoking a friend deletes what the friend and those it
// sponsored brought in and nobody else wants; the owner's channel stays.
func TestBlockAndRevokeFreeStorage(t *testing.T) {
	o, f, x := mustIdentity(t), mustIdentity(t), mustIdentity(t)
	app, _ := startInProcess(t, func(cfg *Config) { cfg.Owner = o.Public().String() })
	ctx := context.Background()
	end := time.Now().Add(24 * time.Hour)
	tf, _ := routing.IssueTicket(o, f.Public(), 1, end)
	tx, _ := routing.IssueTicket(f, x.Public(), 2, end)
	kOwner, kF, kX, kSpam := mustKey(t), mustKey(t), mustKey(t), mustKey(t)
	for _, r := range []struct {
		id    *channel.Identity
		chain routing.Chain
		chs   []channel.ID
	}{
		{o, nil, []channel.ID{kOwner.ID()}},
		{f, routing.Chain{tf}, []channel.ID{kF.ID()}},
		{x, routing.Chain{tf, tx}, []channel.ID{kX.ID(), kSpam.ID()}},
	} {
		h, err := libp2p.New(libp2p.NoListenAddrs)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		h.Connect(ctx, peer.AddrInfo{ID: app.node.Host.ID(), Addrs: app.node.Host.Addrs()})
		if _, err := routing.Register(ctx, h, app.node.Host.ID(), r.id, r.chain, r.chs); err != nil {
			t.Fatal(err)
		}
	}
	count := func(k *channel.Key) int {
		hs, err := app.node.Store.Headers(k.ID(), 0, 1<<62, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}
	for _, k := range []*channel.Key{kOwner, kF, kX, kSpam} {
		for i := range 5 {
			e, err := k.Seal(o, channel.KindText, []byte(fmt.Sprint("message ", i)), time.Now(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := app.node.Sync.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Block(ctx, kSpam.ID().String()); err != nil {
		t.Fatal(err)
	}
	if n := count(kSpam); n != 0 {
		t.Fatalf("the blocked channel keeps %d messages", n)
	}
	if _, err := app.Revoke(ctx, f.Public().String()); err != nil {
		t.Fatal(err)
	}
	if count(kF) != 0 || count(kX) != 0 {
		t.Fatalf("after revoking F: F's channel %d, X's %d messages, want none", count(kF), count(kX))
	}
	if count(kOwner) != 5 {
		t.Fatalf("the owner's channel has %d messages, want 5", count(kOwner))
	}
}

func mustIdentity(t *testing.T) *channel.Identity {
	t.Helper()
	id, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustKey(t *testing.T) *channel.Key {
	t.Helper()
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
