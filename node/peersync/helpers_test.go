package peersync

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// testLog is quiet unless SYNC_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("SYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// node is a real libp2p host on loopback, a real bbolt store in a temp
// directory, and the sync service on them.
type node struct {
	h   host.Host
	db  *store.DB
	svc *Service
	sub <-chan Stored
}

type nodeOpt func(*Config)

func newNode(t testing.TB, clk *testkit.Clock, opts ...nodeOpt) *node {
	t.Helper()
	h := testhost.New(t)
	sopt := store.Options{Logger: testLog()}
	cfg := Config{Logger: testLog(), FetchTimeout: 2 * time.Second, ReconcileInterval: 500 * time.Millisecond}
	if clk != nil {
		sopt.Now, cfg.Now = clk.Now, clk.Now
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{h: h, db: db, svc: New(h, db, cfg)}
	n.sub, _ = n.svc.Subscribe(4096)
	t.Cleanup(func() {
		n.svc.Close()
		h.Close()
		db.Close()
	})
	return n
}

// orderedPair returns two nodes, small with the smaller peer ID, each
// built with its own options (nil: none).
func orderedPair(t testing.TB, smallOpt, largeOpt nodeOpt) (small, large *node) {
	t.Helper()
	small = newNode(t, nil, smallOpt)
	large = newNode(t, nil, largeOpt)
	for bytes.Compare([]byte(small.h.ID()), []byte(large.h.ID())) > 0 {
		large = newNode(t, nil, largeOpt)
	}
	return small, large
}

func connect(t testing.TB, a, b *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func disconnect(t testing.TB, a, b *node) {
	t.Helper()
	if err := a.h.Network().ClosePeer(b.h.ID()); err != nil {
		t.Fatal(err)
	}
}

// writer can seal messages into one channel.
type writer struct {
	key    *channel.Key
	author *channel.Identity
}

func newWriter(t testing.TB) *writer {
	t.Helper()
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &writer{key: k, author: a}
}

func (w *writer) id() channel.ID { return w.key.ID() }

func (w *writer) seal(t testing.TB, body string, now time.Time) *channel.Envelope {
	t.Helper()
	e, err := w.key.Seal(w.author, channel.KindText, []byte(body), now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func has(t testing.TB, n *node, id channel.MessageID) bool {
	t.Helper()
	ok, err := n.db.Has(id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func count(t testing.TB, n *node, ch channel.ID) int {
	t.Helper()
	hs, err := n.db.Headers(ch, -1<<62, 1<<62, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}

func sessionUp(a, b *node) bool {
	return a.svc.sessionFor(b.h.ID()) != nil && b.svc.sessionFor(a.h.ID()) != nil &&
		a.svc.sessionFor(b.h.ID()).peerWantsKnown() && b.svc.sessionFor(a.h.ID()).peerWantsKnown()
}
