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
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNode runs a real super node on loopback serving chs.
func startNode(t *testing.T, dir string, chs []channel.ID, peers ...string) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{
		DataDir:  dir,
		Peers:    peers,
		Channels: chs,
		P2P:      p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()},
		Logger:   quiet(),
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
		if _, err := c.AddNode(n.Addrs()[0]); err != nil {
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
