package client

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// startNodeIn runs a node on dir listening on listen, so that a test can
// stop it and start it again with the same identity, address and files.
func startNodeIn(t *testing.T, dir, listen string, rc routing.Config) *node.Node {
	t.Helper()
	if rc.Logger == nil {
		rc.Logger = quiet()
	}
	n, err := node.New(node.Config{DataDir: dir, Routing: rc, NoDHT: true,
		P2P: p2p.Config{ListenAddrs: []string{listen}, Logger: quiet()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// forgetRegistrations deletes every registration record of the stopped
// node in dir: a node that lost them (a restored backup, a bug).
func forgetRegistrations(t *testing.T, dir string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, node.StoreFile), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := db.Meta("registrations")
	var keys [][]byte
	if err := m.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no registration records to forget: the test proves nothing")
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHearsAgainAfterNodeRestart: the owner's and a friend's running
// clients keep using their home node across a restart, and the friend
// hears what the owner posts after it: when the node kept its
// registrations, and when it lost them, so that it serves the clients only
// because they register again on the re-established session.
func TestHearsAgainAfterNodeRestart(t *testing.T) {
	for _, lose := range []bool{false, true} {
		name := "registrations kept"
		if lose {
			name = "registrations lost"
		}
		t.Run(name, func(t *testing.T) {
			owner := openClient(t, home(t, "owner"))
			friend := openClient(t, home(t, "friend"))
			key, err := owner.Channels().Create("fam")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := friend.Channels().Join("fam", key); err != nil {
				t.Fatal(err)
			}
			ticket(t, owner, friend)
			dir := t.TempDir()
			rc := ownedBy(t, owner.ID())
			n := startNodeIn(t, dir, "/ip4/127.0.0.1/tcp/0", rc)
			addr := n.Addrs()[0]
			listen, _, _ := strings.Cut(addr, "/p2p/")
			addNodes(t, owner, n)
			addNodes(t, friend, n)
			connect(t, owner)
			msgs, stop, err := friend.Subscribe("fam")
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			connect(t, friend)
			ctx := context.Background()
			if _, err := owner.Send(ctx, "fam", "before the restart"); err != nil {
				t.Fatal(err)
			}
			if m := collect(t, msgs, 1)[0]; m.Text != "before the restart" {
				t.Fatalf("friend heard %q", m.Text)
			}

			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if lose {
				forgetRegistrations(t, dir)
			}
			n = startNodeIn(t, dir, listen, rc)
			waitUntil(t, "both clients registered again", func() bool {
				return len(n.Registry.Users()) == 2
			})
			// Sent once the owner's session is back, so that the node
			// takes it; the friend hears it only through a session the
			// node serves.
			waitUntil(t, "the owner's session", func() bool { return len(owner.Nodes().Connected()) == 1 })
			if _, err := owner.Send(ctx, "fam", "after the restart"); err != nil {
				t.Fatal(err)
			}
			if m := collect(t, msgs, 1)[0]; m.Text != "after the restart" {
				t.Fatalf("friend heard %q", m.Text)
			}
		})
	}
}
