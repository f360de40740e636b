package provisioning

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/store"
)

func newHost(t testing.TB, sk crypto.PrivKey) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.DisableRelay()}
	if sk != nil {
		opts = append(opts, libp2p.Identity(sk))
	}
	return testhost.New(t, opts...)
}

func newNodeKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func newOwner(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// testNode is a node as the appliance builds it: a real libp2p host and a
// real store file.
type testNode struct {
	path string
	sk   crypto.PrivKey
	h    host.Host
	db   *store.DB
	p    *Provisioner
	logs *testkit.LogBuffer
}

func startNode(t testing.TB, path string, sk crypto.PrivKey, cfg Config) *testNode {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "node.db")
	}
	if sk == nil {
		sk = newNodeKey(t)
	}
	n := &testNode{path: path, sk: sk, logs: &testkit.LogBuffer{}}
	var err error
	if n.db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	n.h = newHost(t, sk)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if n.p, err = New(n.db.Meta("provisioning"), n.h, cfg); err != nil {
		n.db.Close()
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

// stop closes the node; safe to call twice.
func (n *testNode) stop() {
	if n.p != nil {
		n.p.Close()
		n.h.Close()
		n.db.Close()
		n.p = nil
	}
}

func (n *testNode) uri(t testing.TB) string {
	t.Helper()
	u, err := n.p.URI()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// withAddrs returns uri with its addresses replaced by those of n (a
// restarted node listens on a new port).
func withAddrs(t testing.TB, uri string, n *testNode) URI {
	t.Helper()
	u, err := ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.Addrs = nil
	for _, m := range n.h.Addrs() {
		if a, ok := AddrFromMultiaddr(m); ok {
			u.Addrs = append(u.Addrs, a)
		}
	}
	return u
}
