package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Connect brings the client online: it dials the nodes it uses (the
// registered ones, else the best known), keeps them connected from then
// on, and returns once a sync session with at least one is up, so that
// reconciliation is under way. It fails with ErrNoNodes when no node is
// known.
func (c *Client) Connect(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	nodes := c.activeNodes()
	if len(nodes) == 0 {
		return fmt.Errorf("client.Connect: %w (add one: `redpanda nodes add MULTIADDR`)", ErrNoNodes)
	}
	c.startDialing()
	errs := make(chan error, len(nodes))
	for _, p := range nodes {
		go func() { errs <- c.dial(ctx, p) }()
	}
	var failed []error
	for range nodes {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	for {
		if len(c.sessionsWith(nodes)) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			sort.Slice(failed, func(i, j int) bool { return failed[i].Error() < failed[j].Error() })
			if len(failed) == 0 {
				return fmt.Errorf("client.Connect: no sync session with any of %d node(s): %w", len(nodes), ctx.Err())
			}
			return fmt.Errorf("client.Connect: %w: %w", errors.Join(failed...), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sessionsWith returns those of nodes with a live sync session.
func (c *Client) sessionsWith(nodes []peer.ID) []peer.ID {
	up := map[peer.ID]bool{}
	for _, p := range c.svc.Peers() {
		up[p] = true
	}
	var out []peer.ID
	for _, p := range nodes {
		if up[p] {
			out = append(out, p)
		}
	}
	return out
}
