package client

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNodeB starts a node owned by owner for a benchmark and returns
// its address.
func startNodeB(b *testing.B, owner string) string {
	n, err := node.New(node.Config{DataDir: b.TempDir(), Routing: routing.Config{Owner: identity(b, owner), Logger: quiet()},
		P2P: p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()}, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n.Addrs()[0]
}

// startNode runs a real super node on loopback with its routing registry
// configured by rc (owner, capacity, strangers); it serves the channels
// its registered users ask for. The DHT is off: these tests are about a
// client and its nodes.
func startNode(t *testing.T, rc routing.Config, peers ...string) *node.Node {
	t.Helper()
	if rc.Logger == nil {
		rc.Logger = quiet()
	}
	n, err := node.New(node.Config{
		DataDir: t.TempDir(),
		Peers:   peers,
		Routing: rc,
		NoDHT:   true,
		P2P:     p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()},
		Logger:  quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// ownedBy is the routing configuration of a node whose owner is the
// client identity id.
func ownedBy(t testing.TB, id string) routing.Config {
	return routing.Config{Owner: identity(t, id)}
}

func identity(t testing.TB, s string) channel.IdentityKey {
	t.Helper()
	id, err := channel.ParseIdentityKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ticket has from issue a ticket to to, and to set it.
func ticket(t *testing.T, from, to *Client) {
	t.Helper()
	chain, err := from.Tickets().Issue(to.ID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.Tickets().Set(chain); err != nil {
		t.Fatal(err)
	}
}

func openClient(t *testing.T, home string) *Client {
	t.Helper()
	c, err := Open(Config{Home: home, Create: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addNodes(t *testing.T, c *Client, ns ...*node.Node) {
	t.Helper()
	for _, n := range ns {
		if _, err := c.Nodes().Add(n.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
	}
}

func connect(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
}

func channelID(t *testing.T, key string) channel.ID {
	t.Helper()
	k, err := channel.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// collect reads n messages from ch, failing after a generous deadline
// (a liveness bound, not a speed assertion).
func collect(t *testing.T, ch <-chan Message, n int) []Message {
	t.Helper()
	var out []Message
	deadline := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(out), n)
		}
	}
	return out
}

// noMore fails if ch delivers anything within a short while: duplicates
// would arrive right behind the originals.
func noMore(t *testing.T, ch <-chan Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected extra message %q (%s)", m.Text, m.ID)
	case <-time.After(500 * time.Millisecond):
	}
}

func home(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }
