package routing

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

func newHost(t testing.TB) host.Host {
	t.Helper()
	return testhost.New(t, libp2p.DisableRelay())
}

func newIdentity(t testing.TB) *channel.Identity {
	t.Helper()
	id, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newChannelID(t testing.TB) channel.ID {
	t.Helper()
	var c channel.ID
	if _, err := rand.Read(c[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func issue(t testing.TB, issuer *channel.Identity, subject channel.IdentityKey, hop int, notAfter time.Time) *Ticket {
	t.Helper()
	tk, err := IssueTicket(issuer, subject, hop, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// testNode is a node as the lead wires it: a real host, a real store file
// and the Registry on db.Meta("registrations").
type testNode struct {
	path string
	h    host.Host
	db   *store.DB
	r    *Registry
	logs *testkit.LogBuffer
	cfg  Config
}

func startNode(t testing.TB, path string, cfg Config) *testNode {
	t.Helper()
	return startNodeWith(t, path, cfg, nil)
}

// startNodeWith lets the test touch the records before the registry loads.
func startNodeWith(t testing.TB, path string, cfg Config, before func(Records)) *testNode {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "node.db")
	}
	n := &testNode{path: path, logs: &testkit.LogBuffer{}, cfg: cfg}
	var err error
	if n.db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(n.db.Meta("registrations"))
	}
	n.h = newHost(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if n.r, err = NewRegistry(n.h, n.db.Meta("registrations"), cfg); err != nil {
		n.db.Close()
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	if n.r != nil {
		n.r.Close()
		n.h.Close()
		n.db.Close()
		n.r = nil
	}
}

func (n *testNode) info() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// client is a light client: its identity, chain and its own host.
type client struct {
	name    string
	id      *channel.Identity
	chain   Chain
	h       host.Host
	notices chan Notice
}

func newClient(t testing.TB, name string, id *channel.Identity, chain Chain) *client {
	t.Helper()
	if id == nil {
		id = newIdentity(t)
	}
	c := &client{name: name, id: id, chain: chain, h: newHost(t), notices: make(chan Notice, 4)}
	HandleNotices(c.h, func(n Notice) { c.notices <- n })
	return c
}

func (c *client) register(t testing.TB, n *testNode, chs ...channel.ID) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.h.Connect(ctx, n.info()); err != nil {
		t.Fatalf("%s: connect: %v", c.name, err)
	}
	return Register(ctx, c.h, n.h.ID(), c.id, c.chain, chs)
}

func (c *client) mustRegister(t testing.TB, n *testNode, chs ...channel.ID) Result {
	t.Helper()
	res, err := c.register(t, n, chs...)
	if err != nil {
		t.Fatalf("%s: register: %v", c.name, err)
	}
	return res
}

// refusal returns the status of a refusal, failing on success or on any
// other error.
func refusal(t testing.TB, who string, err error) *RefusedError {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
		t.Fatalf("%s: got %v, want a refusal", who, err)
	}
	return re
}

func (r *Registry) pendingFor(id channel.IdentityKey) (pendingNotice, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pn, ok := r.pending[id]
	return pn, ok
}

func disconnect(t testing.TB, a, b host.Host) {
	t.Helper()
	a.Network().ClosePeer(b.ID())
	testkit.Eventually(t, "disconnect", func() bool {
		return a.Network().Connectedness(b.ID()) != network.Connected &&
			b.Network().Connectedness(a.ID()) != network.Connected
	})
}

// friends builds the test's friend graph: owner, f1 (owner's friend), f2
// (f1's friend), f3 (f2's friend), each ticket valid for a day.
type friends struct {
	owner, f1, f2, f3 *channel.Identity
	c1, c2, c3        Chain
}

func newFriends(t testing.TB) friends {
	t.Helper()
	var f friends
	f.owner, f.f1, f.f2, f.f3 = newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)
	end := time.Now().Add(24 * time.Hour)
	f.c1 = Chain{issue(t, f.owner, f.f1.Public(), 1, end)}
	f.c2 = append(append(Chain{}, f.c1...), issue(t, f.f1, f.f2.Public(), 2, end))
	f.c3 = append(append(Chain{}, f.c2...), issue(t, f.f2, f.f3.Public(), 3, end))
	return f
}
