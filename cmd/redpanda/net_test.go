package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// clientNet is a real node on loopback owned by the first client, and the
// clients of a command test, each with its home under one directory.
type clientNet struct {
	t     *testing.T
	dir   string
	quiet *slog.Logger
	node  *node.Node
}

func newClientNet(t *testing.T) *clientNet {
	return &clientNet{t: t, dir: t.TempDir(), quiet: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// home is the home directory of the client called name.
func (cn *clientNet) home(name string) string { return filepath.Join(cn.dir, name) }

// open opens (creating it the first time) the client called name; it is
// closed when the test ends.
func (cn *clientNet) open(name string) *client.Client {
	cn.t.Helper()
	c, err := client.Open(client.Config{Home: cn.home(name), Create: true, Logger: cn.quiet})
	if err != nil {
		cn.t.Fatal(err)
	}
	cn.t.Cleanup(func() { c.Close() })
	return c
}

// start runs the node, owned by owner.
func (cn *clientNet) start(owner *client.Client) {
	t := cn.t
	t.Helper()
	id, err := channel.ParseIdentityKey(owner.ID())
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: t.TempDir(), NoDHT: true, Logger: cn.quiet,
		Routing: routing.Config{Owner: id, Logger: cn.quiet},
		P2P:     p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: cn.quiet}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	cn.node = n
}

// connect gives each client a ticket from owner (the node's owner), adds
// the node and connects.
func (cn *clientNet) connect(ctx context.Context, owner *client.Client, cs ...*client.Client) {
	t := cn.t
	t.Helper()
	for _, c := range cs {
		if c != owner {
			chain, err := owner.Tickets().Issue(c.ID(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Tickets().Set(chain); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Nodes().Add(cn.node.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
