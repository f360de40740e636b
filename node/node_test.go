package node

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNode starts a node without the DHT, so that only the configured
// peers connect it (the DHT has its own tests in node/discovery).
func startNode(t *testing.T, dir string, ch channel.ID, peers ...string) *Node {
	t.Helper()
	return startWith(t, Config{DataDir: dir, Peers: peers, NoDHT: true, Channels: []channel.ID{ch}})
}

// startWith starts a node with cfg on loopback, quiet unless cfg has a
// logger, and closes it when the test ends.
func startWith(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.P2P.ListenAddrs == nil {
		cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitStored(t *testing.T, db *store.DB, id channel.MessageID) {
	t.Helper()
	waitStoredWithin(t, db, id, 20*time.Second)
}

func waitStoredWithin(t *testing.T, db *store.DB, id channel.MessageID, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ok, err := db.Has(id); err != nil {
			t.Fatal(err)
		} else if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("message %s never arrived", id)
}

// TestLineOfNodesByConfiguredPeers builds A–B–C where only the --peer
// configuration connects them, posts at A and expects it at C; then C
// restarts from its data directory with the same identity and store.
func TestLineOfNodesByConfiguredPeers(t *testing.T) {
	key, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	author, _ := channel.NewIdentity(rand.Reader)
	a := startNode(t, t.TempDir(), key.ID())
	b := startNode(t, t.TempDir(), key.ID(), a.Addrs()[0])
	cDir := t.TempDir()
	c := startNode(t, cDir, key.ID(), b.Addrs()[0])

	env, err := key.Seal(author, channel.KindText, []byte("hello along the line"), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Sync.Publish(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, c.Store, id)
	if len(a.Host.Network().ConnsToPeer(c.Host.ID())) != 0 {
		t.Fatal("A and C are connected directly; the test meant them to meet only through B")
	}

	cID := c.Host.ID()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	env2, _ := key.Seal(author, channel.KindText, []byte("while C was away"), time.Now(), rand.Reader)
	id2, err := a.Sync.Publish(context.Background(), env2)
	if err != nil {
		t.Fatal(err)
	}
	c2 := startNode(t, cDir, key.ID(), b.Addrs()[0])
	if c2.Host.ID() != cID {
		t.Fatalf("restarted node has peer ID %s, want %s", c2.Host.ID(), cID)
	}
	if ok, _ := c2.Store.Has(id); !ok {
		t.Fatal("message stored before the restart is gone")
	}
	waitStored(t, c2.Store, id2)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no data dir":      {},
		"peer without id":  {DataDir: t.TempDir(), Peers: []string{"/ip4/127.0.0.1/tcp/4001"}},
		"garbage multiadr": {DataDir: t.TempDir(), Peers: []string{"not an address"}},
	} {
		t.Run(name, func(t *testing.T) {
			if n, err := New(cfg); err == nil {
				n.Close()
				t.Fatal("accepted")
			}
		})
	}
}

func TestStoreLockedByAnotherNode(t *testing.T) {
	dir := t.TempDir()
	key, _ := channel.NewKey(rand.Reader)
	startNode(t, dir, key.ID())
	_, err := New(Config{
		DataDir: dir,
		P2P:     p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		Store:   store.Options{LockTimeout: 200 * time.Millisecond},
		Logger:  quiet(),
	})
	if err == nil {
		t.Fatal("a second node opened the same data directory")
	}
	if want := filepath.Join(dir, StoreFile); !contains(err.Error(), want) {
		t.Fatalf("error %q does not name the store file %s", err, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
