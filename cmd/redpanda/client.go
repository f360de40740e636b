package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/redpanda-p2p/homenode/client"
)

// connectTimeout bounds how long a one-shot command waits for a node.
const connectTimeout = 20 * time.Second

// defaultHome is $REDPANDA_HOME, else ~/.redpanda.
func defaultHome() string {
	if h := os.Getenv("REDPANDA_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".redpanda")
	}
	return ".redpanda"
}

// opts are the flags every client command takes.
type opts struct {
	fs   *flag.FlagSet
	home *string
	json *bool
}

func clientFlags(name string, stderr io.Writer) opts {
	fs := newFlagSet(name, stderr)
	return opts{fs: fs,
		home: fs.String("home", defaultHome(), "client directory (identity, channels, messages)"),
		json: fs.Bool("json", false, "print JSON for scripts"),
	}
}

// positional parses flags and checks the number of positional arguments.
func (o opts) positional(args []string, min, max int, usage string) ([]string, error) {
	pos, err := parseFlags(o.fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < min || len(pos) > max {
		return nil, usageErr("redpanda %s %s", o.fs.Name(), usage)
	}
	return pos, nil
}

// start parses a client command's flags and positional arguments and
// opens the client's home, as most commands begin.
func (o opts) start(args []string, min, max int, usage string) ([]string, *client.Client, error) {
	pos, err := o.positional(args, min, max, usage)
	if err != nil {
		return nil, nil, err
	}
	c, err := o.open(false)
	if err != nil {
		return nil, nil, err
	}
	return pos, c, nil
}

func (o opts) open(create bool) (*client.Client, error) {
	c, err := client.Open(client.Config{Home: *o.home, Create: create, Owner: "redpanda " + o.fs.Name()})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func clientCommands() []*command {
	return []*command{
		{name: "init", summary: "make this client's identity: init [--home DIR]", run: cmdInit},
		{name: "id", summary: "print this client's identity (what a node's owner is set to)", run: cmdID},
		{name: "channel", summary: "channels: new, join, list, share, leave", subs: []*command{
			{name: "new", summary: "make a channel and print its key: channel new NAME", run: cmdChannelNew},
			{name: "join", summary: "join by key string: channel join NAME KEY", run: cmdChannelJoin},
			{name: "list", summary: "list channels", run: cmdChannelList},
			{name: "share", summary: "print a key to share: channel share NAME [--capability read|write] [--qr]", run: cmdChannelShare},
			{name: "leave", summary: "forget a channel: channel leave NAME", run: cmdChannelLeave},
			{name: "block", summary: "block a flooding channel: channel block NAME", run: cmdChannelBlock},
		}},
		{name: "send", summary: "post a message: send CHANNEL TEXT", run: cmdSend},
		{name: "listen", summary: "print messages as they arrive: listen [CHANNEL] [--json]", run: cmdListen},
		{name: "history", summary: "print a channel's messages: history CHANNEL [--limit N]; history block CHANNEL", run: cmdHistory, subs: []*command{
			{name: "block", summary: "share history older than 7 days: history block CHANNEL", run: cmdHistoryBlock},
		}},
		{name: "nodes", summary: "super nodes (hop, RTT, load); nodes add MULTIADDR; nodes remove PEER-ID", run: cmdNodes, subs: []*command{
			{name: "add", summary: "add a super node: nodes add MULTIADDR", run: cmdNodesAdd},
			{name: "remove", summary: "forget a super node: nodes remove PEER-ID", run: cmdNodesRemove},
		}},
	}
}

func cmdInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("init", stderr)
	if _, err := o.positional(args, 0, 0, "[--home DIR]"); err != nil {
		return err
	}
	c, err := o.open(true)
	if err != nil {
		return err
	}
	defer c.Close()
	if *o.json {
		return printJSON(stdout, map[string]string{"identity": c.ID(), "home": *o.home})
	}
	fmt.Fprintf(stdout, "identity: %s\nhome:     %s\n", c.ID(), *o.home)
	return nil
}

func cmdID(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("id", stderr)
	_, c, err := o.start(args, 0, 0, "[--home DIR]")
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(stdout, c.ID())
	return nil
}

// updateNodes tells the client's nodes about a change (a new channel, a
// friend's node) before a one-shot command exits, as a running client
// would by itself, and delivers what the command queued for the
// identity's other devices and its home node (the client's outbox). It
// says plainly what could not be done: that is kept for the next time
// the client is online.
func updateNodes(ctx context.Context, c *client.Client, stderr io.Writer) {
	uctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	n, err := c.Flush(uctx)
	switch {
	case n > 0:
		fmt.Fprintf(stderr, "redpanda: %d change(s) for your other devices and your node not delivered yet (%s); kept, they go out the next time this client is online (send, listen)\n", n, shortReason(err))
	case err != nil && ctx.Err() == nil:
		fmt.Fprintf(stderr, "redpanda: your nodes were not told yet (%v); they will be when this client next connects\n", err)
	}
}

func cmdChannelNew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel new", stderr)
	pos, c, err := o.start(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	defer c.Close()
	key, err := c.Channels().Create(pos[0])
	if err != nil {
		return err
	}
	defer updateNodes(ctx, c, stderr)
	fmt.Fprintln(stdout, key)
	fmt.Fprintln(stderr, "this key gives full access: share it only with members (channel share --capability read for a read-only key)")
	return nil
}

func cmdChannelJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel join", stderr)
	pos, c, err := o.start(args, 2, 2, "NAME KEY")
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channels().Join(pos[0], strings.TrimSpace(pos[1]))
	if err != nil {
		return err
	}
	// The node serves the channel, takes its statement and meets the
	// sharer's node (the key string's hint) now, not at the next connect.
	defer updateNodes(ctx, c, stderr)
	if *o.json {
		return printJSON(stdout, ch)
	}
	fmt.Fprintf(stdout, "joined %s (%s access, channel %s)\n", ch.Name, ch.Capability, ch.ID)
	return nil
}

func cmdChannelList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel list", stderr)
	_, c, err := o.start(args, 0, 0, "")
	if err != nil {
		return err
	}
	defer c.Close()
	chs, err := c.Channels().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, chs)
	}
	if len(chs) == 0 {
		fmt.Fprintln(stderr, "no channels yet: channel new NAME, or channel join NAME KEY")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tACCESS\tCHANNEL ID")
	for _, ch := range chs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Name, ch.Capability, ch.ID)
	}
	return tw.Flush()
}

func cmdChannelShare(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel share", stderr)
	capName := o.fs.String("capability", "", "share a weaker key: read or write (default: the key this client holds)")
	qr := o.fs.Bool("qr", false, "print a QR code of the key for a phone to scan")
	noHint := o.fs.Bool("no-hint", false, "leave out where your home node is (for a client that predates node hints)")
	pos, err := o.positional(args, 1, 1, "NAME [--capability read|write] [--qr] [--no-hint]")
	if err != nil {
		return err
	}
	if *capName != "" && *capName != "read" && *capName != "write" && *capName != "full" {
		return usageErr("channel share: --capability must be read or write, not %q", *capName)
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	key, err := c.Channels().ShareKey(pos[0], *capName, !*noHint)
	if err != nil {
		return err
	}
	if !*qr {
		fmt.Fprintln(stdout, key)
		return nil
	}
	q, err := qrcode.New(key, qrcode.Low)
	if err != nil {
		return fmt.Errorf("channel share: QR code: %w", err)
	}
	fmt.Fprint(stdout, q.ToSmallString(false))
	fmt.Fprintln(stdout, key)
	return nil
}

func cmdChannelLeave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("channel leave", stderr)
	pos, c, err := o.start(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Channels().Leave(pos[0]); err != nil {
		return err
	}
	updateNodes(ctx, c, stderr)
	fmt.Fprintf(stdout, "left %s\n", pos[0])
	return nil
}

func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("send", stderr)
	timeout := o.fs.Duration("timeout", connectTimeout, "how long to wait for a super node")
	pos, c, err := o.start(args, 2, 2, "CHANNEL TEXT")
	if err != nil {
		return err
	}
	defer c.Close()
	// Fail on a wrong channel name before touching the network.
	if _, err := c.Channels().Get(pos[0]); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	err = c.Connect(cctx)
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Even with no node reachable the message is stored here and tried:
	// it goes out with the next send or listen.
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := c.Send(sctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "sent %s, durable at %s\n", res.ID, strings.Join(res.AckedBy, ", "))
	return nil
}

// jsonMessage is the line `listen --json` and `history --json` print.
type jsonMessage struct {
	Channel     string   `json:"channel"`
	ChannelID   string   `json:"channel_id"`
	Author      string   `json:"author"`
	Mine        bool     `json:"mine"`
	Text        string   `json:"text"`
	ID          string   `json:"id"`
	Timestamp   string   `json:"timestamp"` // RFC 3339, UTC, milliseconds
	DeliveredTo []string `json:"delivered_to,omitempty"`
}

func printMessage(w io.Writer, m client.Message, asJSON bool) error {
	if asJSON {
		return printJSON(w, jsonMessage{Channel: m.Channel, ChannelID: m.ChannelID, Author: m.Author, Mine: m.Mine,
			Text: m.Text, ID: m.ID, Timestamp: m.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"), DeliveredTo: m.DeliveredTo})
	}
	who := m.Author
	if m.Mine {
		who = "me"
	} else if len(who) > 12 {
		who = who[:12] + "…"
	}
	delivered := ""
	if len(m.DeliveredTo) > 0 {
		delivered = fmt.Sprintf("  [delivered to %d]", len(m.DeliveredTo))
	}
	_, err := fmt.Fprintf(w, "%s %s %s: %s%s\n", m.Timestamp.Local().Format("2006-01-02 15:04:05"), m.Channel, who, m.Text, delivered)
	return err
}

func cmdListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("listen", stderr)
	pos, c, err := o.start(args, 0, 1, "[CHANNEL] [--json]")
	if err != nil {
		return err
	}
	defer c.Close()
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	msgs, stop, err := c.Subscribe(name)
	if err != nil {
		return err
	}
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err = c.Connect(cctx)
	cancel()
	switch {
	case errors.Is(err, client.ErrNoNodes):
		return err
	case err != nil && ctx.Err() == nil:
		// Keep listening: the client redials in the background.
		fmt.Fprintf(stderr, "redpanda: no super node reachable yet (%v); still trying\n", err)
	case err == nil:
		fmt.Fprintf(stderr, "redpanda: connected to %s\n", strings.Join(c.Nodes().Connected(), ", "))
	}
	printRefusals(stderr, c)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if err := printMessage(stdout, m, *o.json); err != nil {
				return err
			}
		}
	}
}

func cmdHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("history", stderr)
	limit := o.fs.Int("limit", 50, "how many of the latest messages (0: all)")
	pos, c, err := o.start(args, 1, 1, "CHANNEL [--limit N]")
	if err != nil {
		return err
	}
	defer c.Close()
	ms, err := c.History(pos[0], *limit)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := printMessage(stdout, m, *o.json); err != nil {
			return err
		}
	}
	return nil
}

func cmdNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("nodes", stderr)
	_, c, err := o.start(args, 0, 0, "[--json] | nodes add MULTIADDR")
	if err != nil {
		return err
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Nodes().Probe(pctx)
	cancel()
	if err != nil {
		return err
	}
	ns, err := c.Nodes().List()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, ns)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER ID\tHOP\tRTT\tLOAD\tREGISTERED\tSOURCE\tADDRESS")
	for _, n := range ns {
		hop, rtt, load := "∞", "-", "-"
		if n.Hop >= 0 {
			hop = fmt.Sprint(n.Hop)
		}
		if n.RTT > 0 {
			rtt = n.RTT.Round(10 * time.Microsecond).String()
		}
		if n.Capacity > 0 {
			load = fmt.Sprintf("%d/%d", n.Load, n.Capacity)
		}
		addr := ""
		if len(n.Addrs) > 0 {
			addr = n.Addrs[0]
		}
		reg := "no"
		if n.Registered {
			reg = "until " + n.Expires.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, hop, rtt, load, reg, n.Source, addr)
	}
	return tw.Flush()
}

func cmdNodesAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("nodes add", stderr)
	pos, c, err := o.start(args, 1, 1, "MULTIADDR (ending in /p2p/PEER-ID)")
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := c.Nodes().Add(strings.TrimSpace(pos[0]))
	if err != nil {
		return err
	}
	updateNodes(ctx, c, stderr)
	fmt.Fprintf(stdout, "added %s\n", id)
	return nil
}

// printRefusals tells the person which nodes refused to register this
// client and why ("rate limited", "not allowed", ...): connected but not
// registered, a node relays little for it, and "connected" alone would
// hide that.
func printRefusals(w io.Writer, c *client.Client) {
	ns, err := c.Nodes().List()
	if err != nil {
		return
	}
	for _, n := range ns {
		if !n.Registered && n.LastError != "" {
			fmt.Fprintf(w, "redpanda: node %s did not register this client: %s\n", n.ID, n.LastError)
		}
	}
}

func cmdNodesRemove(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("nodes remove", stderr)
	pos, c, err := o.start(args, 1, 1, "PEER-ID (or its multiaddr)")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Nodes().Remove(strings.TrimSpace(pos[0])); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s\n", strings.TrimSpace(pos[0]))
	return nil
}
