package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/store"
)

// ErrNotOwned: the client owns no node (it has not paired one), or the
// node did not register it at hop 0.
var ErrNotOwned = errors.New("client: not the owner of a node")

// UseIdentity runs fn with the client's libp2p host and its identity's
// Ed25519 private key, for protocols that prove the identity to a node
// and live above this package (pairing in provisioning, the owner-only
// protocol in owner: the SDK must not know them). fn must not
// keep either after it returns. Not part of the gomobile surface.
func (c *Client) UseIdentity(fn func(h host.Host, identity ed25519.PrivateKey) error) error {
	if c.isClosed() {
		return ErrClosed
	}
	return fn(c.h, ed25519.NewKeyFromSeed(c.self.Seed()))
}

// adoptNode implements Nodes.Adopt.
func (c *Client) adoptNode(ctx context.Context, nodeID string, addrs []string) (Node, error) {
	if c.isClosed() {
		return Node{}, ErrClosed
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return Node{}, fmt.Errorf("client.Nodes.Adopt: peer ID %q: %w", nodeID, err)
	}
	for _, a := range addrs {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return Node{}, fmt.Errorf("client.Nodes.Adopt: address %q: %w", a, err)
		}
	}
	err = c.updateNode(p, func(r *nodeRecord, _ bool) {
		// Hop 0 is what the owner expects; registration confirms it.
		r.Hop, r.Source, r.Registered = 0, "paired", false
		r.Addrs = mergeAddrs(addrs, r.Addrs)
	})
	if err != nil {
		return Node{}, fmt.Errorf("client.Nodes.Adopt: %w", err)
	}
	c.nodeChanged(p)
	// A node paired again after a factory reset forgot what it was handed.
	c.forgetStatements(p)
	// The node answers "paired" a moment before its registry learns the
	// owner, so a refusal right after pairing is tried again, briefly.
	var n Node
	for attempt := 0; ; attempt++ {
		if err := c.Connect(ctx); err != nil {
			return Node{}, fmt.Errorf("client.Nodes.Adopt: %w", err)
		}
		if n, err = c.node(p); err != nil {
			return Node{}, fmt.Errorf("client.Nodes.Adopt: %w", err)
		}
		if n.Registered && n.Hop == 0 {
			return n, nil
		}
		if attempt == adoptAttempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("client.Nodes.Adopt: %w", ctx.Err())
		case <-time.After(adoptRetry):
		}
	}
	return n, fmt.Errorf("client.Nodes.Adopt: %w: node %s registered this client at hop %d (%s)", ErrNotOwned, p, n.Hop, n.LastError)
}

const (
	adoptAttempts = 4
	adoptRetry    = 500 * time.Millisecond
)

func (c *Client) node(p peer.ID) (Node, error) {
	ns, err := c.nodes()
	if err != nil {
		return Node{}, err
	}
	for _, n := range ns {
		if n.ID == p.String() {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %s is not known", p)
}

// ownedNode implements Nodes.Owned.
func (c *Client) ownedNode() (string, error) {
	v, err := c.db.Meta(bucketSelf).Get(keyOwns)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("client.Nodes.Owned: %w: pair one first (`redpanda pair URI`)", ErrNotOwned)
	}
	if err != nil {
		return "", fmt.Errorf("client.Nodes.Owned: %w", err)
	}
	p, err := peer.IDFromBytes(v)
	if err != nil {
		return "", fmt.Errorf("client.Nodes.Owned: stored peer ID: %w", err)
	}
	return p.String(), nil
}

// dialNode implements Nodes.Dial.
func (c *Client) dialNode(ctx context.Context, nodeID string) error {
	p, err := peer.Decode(nodeID)
	if err != nil {
		return fmt.Errorf("client.Nodes.Dial: peer ID %q: %w", nodeID, err)
	}
	recs, err := c.nodeRecords()
	if err != nil {
		return fmt.Errorf("client.Nodes.Dial: %w", err)
	}
	r, ok := recs[p]
	if !ok {
		return fmt.Errorf("client.Nodes.Dial: node %s is not known (`redpanda nodes` lists them)", p)
	}
	c.addAddrs(p, r.Addrs)
	if err := c.dial(ctx, p); err != nil {
		return fmt.Errorf("client.Nodes.Dial: %s at %v: %w", p, r.Addrs, err)
	}
	return nil
}
