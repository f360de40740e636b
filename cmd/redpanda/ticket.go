package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func ticketCommand() *command {
	return &command{name: "ticket", summary: "hop tickets: issue, show, set", subs: []*command{
		{name: "issue", summary: "let a friend register at your nodes: ticket issue IDENTITY [--days N]", run: cmdTicketIssue},
		{name: "show", summary: "list the ticket chains this client holds", run: cmdTicketShow},
		{name: "set", summary: "store a chain a friend issued you: ticket set CHAIN", run: cmdTicketSet},
	}}
}

func cmdTicketIssue(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("ticket issue", stderr)
	days := o.fs.Int("days", 90, "days the ticket is valid")
	pos, err := o.positional(args, 1, 1, "IDENTITY (what the friend's `redpanda id` prints) [--days N]")
	if err != nil {
		return err
	}
	if *days <= 0 {
		return usageErr("ticket issue: --days must be positive")
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	chain, err := c.Tickets().Issue(pos[0], *days)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, chain)
	fmt.Fprintln(stderr, "give this to your friend: redpanda ticket set CHAIN")
	return nil
}

func cmdTicketShow(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("ticket show", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	ts, err := c.Tickets().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, ts)
	}
	if len(ts) == 0 {
		fmt.Fprintln(stderr, "no tickets: ask a friend whose node should serve you for `redpanda ticket issue "+c.ID()+"`")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tHOP\tEXPIRES\tCHAIN")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Owner, t.Hop, t.Expires.Local().Format("2006-01-02"), t.Chain)
	}
	return tw.Flush()
}

func cmdTicketSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("ticket set", stderr)
	pos, c, err := o.start(args, 1, 1, "CHAIN")
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.Tickets().Set(strings.TrimSpace(pos[0]))
	if err != nil {
		return err
	}
	defer updateNodes(ctx, c, stderr) // registers at the ticket's nodes
	fmt.Fprintf(stdout, "ticket set: hop %d at the nodes of %s, until %s\n", t.Hop, t.Owner, t.Expires.Local().Format("2006-01-02"))
	return nil
}
