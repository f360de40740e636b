package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/owner"
)

// The owner's side of the node's firmware updates (docs/UPDATES.md), as the
// phone app does it, over the owner-only protocol.

func nodeUpdateCommand() *command {
	return &command{name: "update", summary: "the owned node's firmware updates: status, feed URL, check, apply", subs: []*command{
		{name: "status", summary: "what the node runs, what it is doing, how the last update ended: status [--json]", run: cmdUpdateStatus},
		{name: "feed", summary: "set the node's release feed: feed URL [--interval 24h] [--manual] [--rate BYTES/S]; feed '' turns checks off", run: cmdUpdateFeed},
		{name: "check", summary: "have the node check its feed now", run: cmdUpdateCheck},
		{name: "apply", summary: "install a release: apply VERSION (of the feed) | --url URL | --file BUNDLE [--force-downgrade]", run: cmdUpdateApply},
	}}
}

func nodeReportsCommand() *command {
	return &command{name: "reports", summary: "what the owned node reported into the master channel (updates): reports [--json]", run: cmdNodeReports}
}

// withNode dials the owned node and runs fn as its owner.
func withNode(ctx context.Context, c *client.Client, timeout time.Duration, fn func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error) error {
	nodeID, err := c.Nodes().Owned()
	if err != nil {
		return err
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Nodes().Dial(cctx, nodeID); err != nil {
		return err
	}
	err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error { return fn(cctx, h, p, key) })
	if errors.Is(err, owner.ErrNotOwner) {
		return fmt.Errorf("node %s refused: this client (%s) is not its owner: %w", p, c.ID(), err)
	}
	return err
}

func cmdUpdateStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node update status", stderr)
	_, c, err := o.start(args, 0, 0, "[--json]")
	if err != nil {
		return err
	}
	defer c.Close()
	var st owner.UpdateState
	err = withNode(ctx, c, connectTimeout, func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error {
		st, err = owner.GetUpdateState(ctx, h, p, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("node update status: %w", err)
	}
	if *o.json {
		return printJSON(stdout, st)
	}
	u := st.Update
	fmt.Fprintf(stdout, "slot:      %s\nstate:     %s", u.Slot, u.State)
	if u.Version != "" {
		fmt.Fprintf(stdout, " %s", u.Version)
	}
	if u.Percent > 0 {
		fmt.Fprintf(stdout, " %d%%", u.Percent)
	}
	if u.Detail != "" {
		fmt.Fprintf(stdout, ": %s", u.Detail)
	}
	fmt.Fprintln(stdout)
	if u.Last != "" {
		fmt.Fprintf(stdout, "last:      %s\n", u.Last)
	}
	if u.Available != "" {
		fmt.Fprintf(stdout, "available: %s\n", u.Available)
	}
	feed := st.Settings.Feed
	if feed == "" {
		feed = "(none: no automatic checks)"
	} else if st.Settings.Manual {
		feed += " (manual: new releases are announced, not installed)"
	}
	fmt.Fprintf(stdout, "feed:      %s\n", feed)
	if u.DevKeys {
		fmt.Fprintln(stdout, "warning:   the node trusts the DEVELOPMENT release key (anyone can sign updates for it)")
	}
	return nil
}

func cmdUpdateFeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node update feed", stderr)
	interval := o.fs.Duration("interval", 0, "time between checks (default 24h)")
	manual := o.fs.Bool("manual", false, "announce new releases, install none unasked")
	rate := o.fs.Int64("rate", 0, "download cap in bytes per second (0: the node's default, -1: none)")
	pos, c, err := o.start(args, 1, 1, "URL [--interval D] [--manual] [--rate N]")
	if err != nil {
		return err
	}
	defer c.Close()
	s := owner.UpdateSettings{Feed: pos[0], Manual: *manual, Rate: *rate}
	if *interval > 0 {
		s.Interval = interval.String()
	}
	err = withNode(ctx, c, connectTimeout, func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error {
		return owner.ConfigureUpdates(ctx, h, p, key, s)
	})
	if err != nil {
		return fmt.Errorf("node update feed: %w", err)
	}
	if s.Feed == "" {
		fmt.Fprintln(stdout, "the node no longer checks for updates")
	} else {
		fmt.Fprintf(stdout, "the node checks %s now and then regularly\n", s.Feed)
	}
	return nil
}

func cmdUpdateCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node update check", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	err = withNode(ctx, c, connectTimeout, func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error {
		return owner.CheckForUpdate(ctx, h, p, key)
	})
	if err != nil {
		return fmt.Errorf("node update check: %w", err)
	}
	fmt.Fprintln(stdout, "the node checks its feed now (redpanda node update status)")
	return nil
}

func cmdUpdateApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node update apply", stderr)
	u := o.fs.String("url", "", "the bundle's URL (the node downloads it)")
	file := o.fs.String("file", "", "a bundle file on this device (sent to the node)")
	downgrade := o.fs.Bool("force-downgrade", false, "install an older version than the node runs")
	pos, c, err := o.start(args, 0, 1, "VERSION | --url URL | --file BUNDLE [--force-downgrade]")
	if err != nil {
		return err
	}
	defer c.Close()
	given := len(pos)
	if *u != "" {
		given++
	}
	if *file != "" {
		given++
	}
	if given != 1 {
		return usageErr("node update apply: give one of VERSION, --url or --file")
	}
	if *file != "" {
		var name string
		last := -1
		err = withNode(ctx, c, 6*time.Hour, func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error {
			name, err = owner.UploadBundle(ctx, h, p, key, *file, true, *downgrade, func(done, total int64) {
				if pct := int(done * 100 / total); pct/10 != last/10 && !*o.json {
					last = pct
					fmt.Fprintf(stderr, "sent %d%%\n", pct)
				}
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("node update apply: %w", err)
		}
		fmt.Fprintf(stdout, "the node checked %s and installs it; it reboots into it (redpanda node update status)\n", name)
		return nil
	}
	a := owner.UpdateApply{URL: *u, AllowOlder: *downgrade}
	if len(pos) == 1 {
		a.Version = pos[0]
	}
	err = withNode(ctx, c, connectTimeout, func(ctx context.Context, h host.Host, p peer.ID, key ed25519.PrivateKey) error {
		return owner.ApplyUpdate(ctx, h, p, key, a)
	})
	if err != nil {
		return fmt.Errorf("node update apply: %w", err)
	}
	fmt.Fprintln(stdout, "the node fetches, checks and installs it, then reboots (redpanda node update status)")
	return nil
}

func cmdNodeReports(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("node reports", stderr)
	_, c, err := o.start(args, 0, 0, "[--json]")
	if err != nil {
		return err
	}
	defer c.Close()
	rs, err := c.Nodes().Reports()
	if err != nil {
		return err
	}
	if *o.json {
		if rs == nil {
			rs = []client.NodeReport{}
		}
		return printJSON(stdout, rs)
	}
	if len(rs) == 0 {
		fmt.Fprintln(stdout, "no reports from the node yet (redpanda listen or sync to fetch them)")
	}
	for _, r := range rs {
		fmt.Fprintf(stdout, "%s  %s\n", r.At.Local().Format(time.DateTime), r.Text)
	}
	return nil
}
