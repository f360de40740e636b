package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// Finding contacts through friends (paper §4.3; docs/CONTACTS.md): the
// address book says which of this client's channels belongs to which
// phone number or e-mail address (only its hash is ever sent), and `find`
// asks the friends' running clients who knows an address.

func contactsCommand() *command {
	return &command{name: "contacts", summary: "address book and lookup through friends: add, list, remove, find", subs: []*command{
		{name: "add", summary: "vouch for a contact: contacts add CHANNEL PHONE|EMAIL [--id IDENTITY] [--cc 49]", run: cmdContactsAdd},
		{name: "list", summary: "list the address book", run: cmdContactsList},
		{name: "remove", summary: "forget: contacts remove PHONE|EMAIL|CHANNEL [--cc 49]", run: cmdContactsRemove},
		{name: "find", summary: "ask friends: contacts find PHONE|EMAIL [--via CH,...] [--cc 49] [--wait 10s]", run: cmdContactsFind},
	}}
}

// maxAddressWords bounds the words of a phone number typed with spaces
// (+49 151 2345 6789).
const maxAddressWords = 8

func ccFlag(o opts) *string {
	return o.fs.String("cc", "", "country calling code for national numbers (e.g. 49)")
}

func cmdContactsAdd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("contacts add", stderr)
	cc := ccFlag(o)
	id := o.fs.String("id", "", "the contact's identity (rpi…), if more than one other person wrote in the channel")
	// A number is typed as people write it, spaces and all.
	pos, c, err := o.start(args, 2, maxAddressWords+1, "CHANNEL PHONE|EMAIL [--id IDENTITY] [--cc 49]")
	if err != nil {
		return err
	}
	defer c.Close()
	ct, err := c.Contacts().Add(pos[0], strings.Join(pos[1:], " "), *cc, *id)
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, ct)
	}
	fmt.Fprintf(stdout, "address:  %s\nidentity: %s\nchannel:  %s\nhash:     %s\n", ct.Address, ct.Identity, ct.Channel, ct.Hash)
	fmt.Fprintln(stderr, "friends who ask for this address now learn this identity through you (while your client runs)")
	return nil
}

func cmdContactsList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("contacts list", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	cts, err := c.Contacts().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, cts)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tCHANNEL\tIDENTITY")
	for _, ct := range cts {
		ch := ct.Channel
		if ch == "" {
			ch = "(left)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ct.Address, ch, ct.Identity)
	}
	return tw.Flush()
}

func cmdContactsRemove(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("contacts remove", stderr)
	cc := ccFlag(o)
	pos, c, err := o.start(args, 1, maxAddressWords, "PHONE|EMAIL|CHANNEL [--cc 49]")
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := c.Contacts().Remove(strings.Join(pos, " "), *cc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed: %d\n", n)
	return nil
}

func cmdContactsFind(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("contacts find", stderr)
	cc := ccFlag(o)
	via := o.fs.String("via", "", "comma-separated channels to ask (default: every friend channel)")
	wait := o.fs.Duration("wait", client.DefaultLookupWait, "how long to collect answers")
	name := o.fs.String("name", "contact", "channel name to put in the printed `friends agree` command")
	pos, err := o.positional(args, 1, maxAddressWords, "PHONE|EMAIL [--via CH,...] [--cc 49] [--wait 10s]")
	if err != nil {
		return err
	}
	pos = []string{strings.Join(pos, " ")}
	if _, err := client.NormalizeAddress(pos[0], *cc); err != nil {
		return err // before connecting: a typo should not wait for a node
	}
	var chans []string
	for _, ch := range strings.Split(*via, ",") {
		if ch = strings.TrimSpace(ch); ch != "" {
			chans = append(chans, ch)
		}
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err = c.Connect(cctx)
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Fprintf(stderr, "asking friends (hashing takes a moment; answers are collected for %s)…\n", *wait)
	res, err := c.Contacts().Find(ctx, pos[0], *cc, chans, *wait)
	if err != nil {
		return err
	}
	for _, ch := range res.NotDelivered {
		fmt.Fprintf(stderr, "warning: the query in %q reached no super node; that friend was not asked\n", ch)
	}
	for _, r := range res.Rejected {
		fmt.Fprintf(stderr, "refused answer: %s\n", r)
	}
	if *o.json {
		return printJSON(stdout, res)
	}
	return printLookup(stdout, res, *name, *wait)
}

func printLookup(w io.Writer, res *client.LookupResult, name string, wait time.Duration) error {
	fmt.Fprintf(w, "asked:    %s\n", strings.Join(res.Asked, ", "))
	if len(res.Answers) == 0 {
		fmt.Fprintf(w, "found:    nobody answered within %s (a friend who does not know the address stays silent, as one who is offline does)\n", wait)
		return nil
	}
	for _, id := range res.Identities {
		fmt.Fprintf(w, "identity: %s via %s\n", id, strings.Join(res.Via(id), ", "))
	}
	if res.Conflict {
		fmt.Fprintf(w, "conflict: friends name %d different identities for this address: at least one is lying or mistaken.\n", len(res.Identities))
		fmt.Fprintln(w, "          Agree through the paths of one identity and compare the safety code with the person by voice or in person.")
	}
	for _, id := range res.Identities {
		fmt.Fprintf(w, "agree:    %s\n", res.AgreeCommand(name, id))
	}
	return nil
}
