package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/redpanda-p2p/homenode/client"
)

// deviceCommand is `redpanda device link|join|list` (paper §4.7).
func deviceCommand() *command {
	return &command{name: "device", summary: "devices of this identity: link, join STRING, list", subs: []*command{
		{name: "link", summary: "print a secret, short-lived string for a new device", run: cmdDeviceLink},
		{name: "join", summary: "make this (empty) home a device of another: device join STRING [--name N]", run: cmdDeviceJoin},
		{name: "list", summary: "list this identity's devices", run: cmdDeviceList},
	}}
}

func cmdDeviceLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("device link", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	_ = c.Connect(cctx)
	s, err := c.Devices().Link(cctx, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", s)
	fmt.Fprintf(stderr, "secret: it holds this identity; valid %s\n", client.DefaultLinkLifetime)
	// The link names the nodes this client is registered at; with none,
	// the new device has nowhere to fetch the identity's state from.
	if ns, err := c.Nodes().List(); err == nil && !slices.ContainsFunc(ns, func(n client.Node) bool { return n.Registered }) {
		why := "no super node known"
		if len(ns) > 0 && ns[0].LastError != "" {
			why = ns[0].LastError
		}
		fmt.Fprintf(stderr, "warning: this link names no node (%s); the new device will need `redpanda nodes add MULTIADDR` before it gets your channels\n", why)
	}
	updateNodes(ctx, c, stderr)
	return nil
}

func cmdDeviceJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("device join", stderr)
	name := o.fs.String("name", "device", "what this device calls itself")
	pos, err := o.positional(args, 1, 1, "STRING [--name N]")
	if err != nil {
		return err
	}
	c, err := client.JoinDevice(ctx, client.Config{Home: *o.home, Owner: "redpanda device join"}, pos[0], *name)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "%s\n", c.ID())
	// Fetch the identity's state (channels, nodes, tickets) from the node
	// the link names, so the next command finds it here.
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	err = c.Connect(cctx)
	if err == nil {
		err = c.Devices().WaitState(cctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "redpanda: joined, but the other devices' channels and nodes are not here yet (%s); they arrive the next time this device is online (listen)\n", shortReason(err))
	} else {
		chs, _ := c.Channels().List()
		ns, _ := c.Nodes().List()
		fmt.Fprintf(stderr, "joined as %q: %d channel(s), %d node(s) from the other devices\n", *name, len(chs), len(ns))
	}
	updateNodes(ctx, c, stderr)
	return nil
}

// shortReason is why a client could not reach its nodes, in a few words.
func shortReason(err error) string {
	switch {
	case errors.Is(err, client.ErrNoNodes):
		return "no super node known: redpanda pair, or nodes add"
	case errors.Is(err, context.DeadlineExceeded):
		return "no super node answered in time"
	default:
		return "no super node reachable"
	}
}

func cmdDeviceList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("device list", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	ds, err := c.Devices().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, ds)
	}
	for _, d := range ds {
		self := ""
		if d.Self {
			self = " (this one)"
		}
		fmt.Fprintf(stdout, "%s  %s%s\n", d.Peer, d.Name, self)
	}
	return nil
}

// cmdHistoryBlock is `redpanda history block CHANNEL`.
func cmdHistoryBlock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("history block", stderr)
	pos, c, err := o.start(args, 1, 1, "CHANNEL")
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	_ = c.Connect(cctx)
	res, err := c.Channels().PostBlock(cctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "block %s: %d messages in %d chunk(s)\n", res.Hash, res.Messages, res.Chunks)
	return nil
}

// cmdChannelBlock is `redpanda channel block NAME`.
func cmdChannelBlock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel block", stderr)
	pos, c, err := o.start(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Channels().Block(pos[0]); err != nil {
		return err
	}
	updateNodes(ctx, c, stderr)
	return nil
}
