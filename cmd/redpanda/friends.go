package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// Multi-path key agreement through friends (paper §4.3): Alice runs
// `friends agree`, naming the channels she shares with friends who also
// share a channel with Bob; Bob runs `friends accept`. The friends' clients
// must be running (e.g. `redpanda listen`) to forward; they never see the
// new channel's key.

func friendsCommand() *command {
	return &command{name: "friends", summary: "open a channel through friends: agree, accept", subs: []*command{
		{name: "agree", summary: "start: friends agree NAME --with IDENTITY --via CHANNEL[,CHANNEL...]", run: cmdFriendsAgree},
		{name: "accept", summary: "wait for one: friends accept NAME --from IDENTITY", run: cmdFriendsAccept},
	}}
}

func cmdFriendsAgree(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("friends agree", stderr)
	with := o.fs.String("with", "", "identity (rpi…) of the person to agree with")
	via := o.fs.String("via", "", "comma-separated channels, each shared with a different friend")
	timeout := o.fs.Duration("timeout", 2*time.Minute, "how long the agreement may take")
	pos, err := o.positional(args, 1, 1, "NAME --with IDENTITY --via CHANNEL[,CHANNEL...]")
	if err != nil {
		return err
	}
	if *with == "" || *via == "" {
		return usageErr("usage: redpanda friends agree NAME --with IDENTITY --via CHANNEL[,CHANNEL...]")
	}
	var chans []string
	for _, ch := range strings.Split(*via, ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			chans = append(chans, ch)
		}
	}
	return runFriends(ctx, o, *timeout, stdout, stderr, func(ctx context.Context, c *client.Client) (*client.Agreement, error) {
		return c.Friends().Agree(ctx, pos[0], *with, chans)
	})
}

func cmdFriendsAccept(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("friends accept", stderr)
	from := o.fs.String("from", "", "identity (rpi…) of the person who starts")
	timeout := o.fs.Duration("timeout", 10*time.Minute, "how long to wait")
	pos, err := o.positional(args, 1, 1, "NAME --from IDENTITY")
	if err != nil {
		return err
	}
	if *from == "" {
		return usageErr("usage: redpanda friends accept NAME --from IDENTITY")
	}
	fmt.Fprintln(stderr, "waiting for the agreement to start…")
	return runFriends(ctx, o, *timeout, stdout, stderr, func(ctx context.Context, c *client.Client) (*client.Agreement, error) {
		return c.Friends().Accept(ctx, pos[0], *from)
	})
}

// runFriends opens and connects the client, runs one side and prints the
// new channel and its safety code.
func runFriends(ctx context.Context, o opts, timeout time.Duration, stdout, stderr io.Writer,
	side func(context.Context, *client.Client) (*client.Agreement, error)) error {
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cctx, ccancel := context.WithTimeout(ctx, connectTimeout)
	err = c.Connect(cctx)
	ccancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ag, err := side(ctx, c)
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, ag)
	}
	fmt.Fprintf(stdout, "joined %s (channel %s)\nsafety code: %s\n", ag.Channel.Name, ag.Channel.ID, ag.SafetyCode)
	fmt.Fprintln(stderr, "compare the safety code with your contact by voice or in person: if it differs, every path was tampered with; leave the channel")
	return nil
}
