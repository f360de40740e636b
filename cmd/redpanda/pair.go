package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// pairTimeout: docs/PAIRING.md asks a phone to allow 5 minutes, since a
// node under a flood of wrong attempts answers slowly.
const pairTimeout = 5 * time.Minute

// reachTimeout bounds the first dial, so an unreachable node is reported
// as such instead of as a pairing timeout.
const reachTimeout = 20 * time.Second

func pairCommand() *command {
	return &command{name: "pair", summary: "become a home node's owner: pair URI (the RPPAIR1: text of its QR code)", run: cmdPair}
}

func nodeCommand() *command {
	return &command{name: "node", summary: "the node this client owns: node status [NODE] [--json], node update, node reports", subs: []*command{
		{name: "status", summary: "the owned node's status, over the owner-only protocol: status [NODE] [--json]", run: cmdNodeStatus},
		nodeUpdateCommand(), nodeReportsCommand(),
	}}
}

// pairResult is what `pair --json` prints.
type pairResult struct {
	Node     string   `json:"node"`
	Owner    string   `json:"owner"`
	Hop      int      `json:"hop"`
	Addrs    []string `json:"addrs"`
	Channels int      `json:"channels"`
}

func cmdPair(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("pair", stderr)
	timeout := o.fs.Duration("timeout", pairTimeout, "how long to wait for the node's answer")
	pos, err := o.positional(args, 1, 1, "URI")
	if err != nil {
		return err
	}
	u, err := provisioning.ParseURI(strings.TrimSpace(pos[0]))
	if err != nil {
		return fmt.Errorf("pair: not a redPanda pairing code (scan the QR code on the node's screen or status page): %w", err)
	}
	pid, err := u.PeerID()
	if err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	ai := peer.AddrInfo{ID: pid}
	addrs := make([]string, 0, len(u.Addrs))
	for _, a := range u.Addrs {
		ai.Addrs = append(ai.Addrs, a.Multiaddr())
		addrs = append(addrs, a.Multiaddr().String())
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
		rctx, rcancel := context.WithTimeout(pctx, reachTimeout)
		err := h.Connect(rctx, ai)
		rcancel()
		if err != nil {
			return fmt.Errorf("pair: cannot reach node %s at %s (same network? is it running?): %w", pid, strings.Join(addrs, ", "), err)
		}
		return pairError(provisioning.PairURI(pctx, h, u, key))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "paired: node %s now belongs to %s; registering\n", pid, c.ID())
	// The identity's master and node channels first, so the registration
	// lists them and the node takes this device's posts there.
	nodeKey, keyErr := c.Nodes().HomeKey(pctx)
	n, err := c.Nodes().Adopt(pctx, pid.String(), addrs)
	if err != nil {
		return fmt.Errorf("pair: paired, but %w", err)
	}
	// The node follows this identity's node channel, so it serves the
	// channels of every device of the owner (docs/DEVICES.md).
	err = keyErr
	if err == nil {
		err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
			return owner.Follow(pctx, h, pid, key, nodeKey)
		})
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: the node will serve only this device's channels: %v\n", err)
	}
	// It may post (never read) in the master channel: how its firmware
	// updates end (docs/UPDATES.md).
	if reportKey, err := c.Nodes().ReportKey(); err == nil {
		err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
			return owner.SetReportKey(pctx, h, pid, key, reportKey)
		})
		if err != nil && !errors.Is(err, owner.ErrUnknown) {
			fmt.Fprintf(stderr, "warning: the node cannot report its updates to you: %v\n", err)
		}
	}
	chs, err := c.Channels().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, pairResult{Node: n.ID, Owner: c.ID(), Hop: n.Hop, Addrs: n.Addrs, Channels: len(chs)})
	}
	fmt.Fprintf(stdout, "paired with %s: you own it (hop 0); it serves your %d channel(s)\n", n.ID, len(chs))
	return nil
}

// pairError turns the node's verdict into what the person should do.
func pairError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provisioning.ErrRejected):
		return fmt.Errorf("pair: the node refused this pairing code: wrong, already used, or from before the node restarted; scan its current QR code: %w", err)
	case errors.Is(err, provisioning.ErrNotWaiting):
		return fmt.Errorf("pair: the node already has an owner; its owner can factory-reset it (homenode reset) to pair again: %w", err)
	case errors.Is(err, provisioning.ErrBusy):
		return fmt.Errorf("pair: the node is busy with other pairing attempts; try again in a minute: %w", err)
	case errors.Is(err, provisioning.ErrNodeFailed):
		return fmt.Errorf("pair: the node could not store the pairing; check it and try again: %w", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pair: the node did not answer in time (too many attempts slow it down; try again later): %w", err)
	default:
		return fmt.Errorf("pair: %w", err)
	}
}

func cmdNodeStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node status", stderr)
	pos, c, err := o.start(args, 0, 1, "[NODE] [--json]")
	if err != nil {
		return err
	}
	defer c.Close()
	var nodeID string
	if len(pos) == 1 {
		nodeID = pos[0]
	} else if nodeID, err = c.Nodes().Owned(); err != nil {
		return err
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return usageErr("node status: %q is not a peer ID", nodeID)
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := c.Nodes().Dial(cctx, nodeID); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	var r status.Report
	err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
		r, err = owner.Status(cctx, h, p, key)
		return err
	})
	if errors.Is(err, owner.ErrNotOwner) {
		return fmt.Errorf("node status: node %s refused: this client (%s) is not its owner (was it factory-reset?): %w", p, c.ID(), err)
	}
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	if *o.json {
		return printJSON(stdout, r)
	}
	return status.Render(stdout, r)
}
