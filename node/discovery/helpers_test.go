package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/store"
)

// testLog is quiet unless DISCOVERY_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("DISCOVERY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig makes rounds quick enough for tests on loopback, where every
// peer is in one IP group (so the diversity limits are raised).
func fastConfig(boot ...peer.AddrInfo) Config {
	return Config{
		Bootstrap:                boot,
		MaintainInterval:         300 * time.Millisecond,
		DialTimeout:              2 * time.Second,
		LookupTimeout:            5 * time.Second,
		FailureBackoff:           time.Minute,
		MaxPeersPerIPGroup:       1000,
		MaxPeersPerIPGroupPerCpl: 1000,
		Logger:                   testLog(),
	}
}

// smallHost is a TCP-only loopback host with small connection limits,
// for many-node tests.
func smallHost(t testing.TB) host.Host {
	t.Helper()
	cm, err := connmgr.NewConnManager(40, 60)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// superNode is a real super node minus the composition of package node:
// a persistent host from node/p2p, a bbolt store, the sync service and
// discovery, all in one data directory so that it can be restarted.
type superNode struct {
	t      testing.TB
	dir    string
	h      host.Host
	db     *store.DB
	sync   *peersync.Service
	disc   *Service
	sub    <-chan peersync.Stored
	mu     sync.Mutex
	phones map[peer.ID]bool // registered clients, allowed without a statement
}

func startSuperNode(t testing.TB, dir string, cfg Config, phones ...peer.ID) *superNode {
	t.Helper()
	h, err := p2p.New(p2p.Config{DataDir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "messages.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	n := &superNode{t: t, dir: dir, h: h, db: db, phones: map[peer.ID]bool{}}
	for _, p := range phones {
		n.phones[p] = true
	}
	cfg.Meta = db.Meta("dht")
	// As package node does: a peer that proves a channel after its sync
	// session began is resynced, and its wants for the channel kept.
	var ready atomic.Pointer[peersync.Service]
	authorized := func(p peer.ID, ch channel.ID) {
		if s := ready.Load(); s != nil {
			s.Resync(p, ch)
		}
	}
	switch tn, _ := cfg.Node.(*testNode); {
	case tn == withoutNode:
		cfg.Node = nil
	case tn != nil:
		tn.authorized = authorized
	default:
		cfg.Node = &testNode{authorized: authorized}
	}
	n.disc, err = New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.sync = peersync.New(h, db, peersync.Config{
		Logger: testLog(), FetchTimeout: 2 * time.Second, ReconcileInterval: 500 * time.Millisecond,
		Access: superNodeAccess{n},
	})
	ready.Store(n.sync)
	n.sync.Want(n.disc.Served()...)
	n.sub, _ = n.sync.Subscribe(4096)
	t.Cleanup(n.stop)
	return n
}

// superNodeAccess is the test super node's relay rule: its phones, and
// super nodes that proved they serve the channel; every peer is known
// (no stranger bounds), but sessions are opened as the node opens them.
type superNodeAccess struct{ n *superNode }

func (a superNodeAccess) Accept(p peer.ID, ch channel.ID) bool {
	a.n.mu.Lock()
	phone := a.n.phones[p]
	a.n.mu.Unlock()
	return phone || a.n.disc.Authorized(p, ch)
}

func (superNodeAccess) Admit(peer.ID, channel.ID) error { return nil }

func (superNodeAccess) Known(peer.ID) bool { return true }

// Opens is the node's: its phones and the super nodes that proved a
// channel it serves (a DHT contact gets no session).
func (a superNodeAccess) Opens(p peer.ID) bool {
	a.n.mu.Lock()
	phone := a.n.phones[p]
	a.n.mu.Unlock()
	return phone || a.n.disc.Known(p)
}

func (n *superNode) stop() {
	if n.h == nil {
		return
	}
	n.sync.Close()
	n.disc.Close()
	n.h.Close()
	n.db.Close()
	n.h = nil
}

func (n *superNode) serve(t testing.TB, key *channel.Key) {
	t.Helper()
	st, err := IssueStatement(key, n.h.ID(), time.Now().Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.disc.Serve(st); err != nil {
		t.Fatal(err)
	}
	n.sync.Want(key.ID())
}

// phone is a light client standing in for a person's phone: a host, a
// store and sync, connected only to its super node.
type phone struct {
	h    host.Host
	db   *store.DB
	sync *peersync.Service
	sub  <-chan peersync.Stored
}

func newPhone(t testing.TB, ch channel.ID) *phone {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "phone.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{h: h, db: db, sync: peersync.New(h, db, peersync.Config{Logger: testLog(), FetchTimeout: 2 * time.Second})}
	p.sync.Want(ch)
	p.sub, _ = p.sync.Subscribe(4096)
	t.Cleanup(func() { p.sync.Close(); h.Close(); db.Close() })
	return p
}

func connectTo(t testing.TB, h host.Host, to host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, info(to)); err != nil {
		t.Fatal(err)
	}
}

// writer seals messages into one channel.
type writer struct {
	key    *channel.Key
	author *channel.Identity
}

func newWriter(t testing.TB) *writer {
	t.Helper()
	a, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &writer{key: newKey(t), author: a}
}

func (w *writer) seal(t testing.TB, body string) *channel.Envelope {
	t.Helper()
	e, err := w.key.Seal(w.author, channel.KindText, []byte(body), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitFor reads sub until the message id arrives. The bound is for
// liveness (a hung test fails instead of hanging), not speed.
func waitFor(t testing.TB, sub <-chan peersync.Stored, id channel.MessageID, what string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case st, ok := <-sub:
			if !ok {
				t.Fatalf("%s: subscription closed", what)
			}
			if st.ID == id {
				return
			}
		case <-deadline:
			t.Fatalf("never happened: %s", what)
		}
	}
}

// eventually polls cond until it holds (liveness bound, not speed).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }

// testNode is the discovery.Node of a test's super node: it resyncs as
// package node does, and lets hand over and introduce whom the test's
// functions say (nil: nobody).
type testNode struct {
	authorized func(peer.ID, channel.ID)
	handOver   func(peer.ID) []channel.ID
	introduce  func(peer.ID) bool
}

// withoutNode as Config.Node starts a super node without a
// discovery.Node: it serves neither hand-overs nor introductions.
var withoutNode = &testNode{}

func (n *testNode) PeerAuthorized(p peer.ID, ch channel.ID) {
	if n.authorized != nil {
		n.authorized(p, ch)
	}
}

func (n *testNode) HandOverChannels(p peer.ID) []channel.ID {
	if n.handOver == nil {
		return nil
	}
	return n.handOver(p)
}

func (n *testNode) HandedOver([]channel.ID) {}

func (n *testNode) MayIntroduce(p peer.ID) bool { return n.introduce != nil && n.introduce(p) }
