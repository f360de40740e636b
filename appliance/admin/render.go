package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/status"
)

// WriteJSON writes v as indented JSON, the `--json` output of every
// subcommand.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// RenderStatus writes the report as a short labelled summary for a person.
func RenderStatus(w io.Writer, r status.Report) error {
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Node", r.Node.PeerID)
	row("Version", r.Version+", up "+status.Duration(r.Uptime))
	if r.Board != "" {
		row("Board", r.Board)
	}
	switch r.Pairing.State {
	case status.PairingOwned:
		row("Pairing", "owned by "+r.Pairing.Owner)
	case status.PairingWaiting:
		row("Pairing", "waiting for pairing: "+r.Pairing.URI)
	default:
		row("Pairing", "starting, not paired yet")
	}
	reach := r.Reachability.Diagnosis
	if r.Reachability.ExternalAddr != "" {
		reach += " " + r.Reachability.ExternalAddr
	}
	row("Reachability", reach)
	if r.Reachability.Hint != "" {
		row("", r.Reachability.Hint)
	}
	if r.Reachability.Relay != "" {
		row("Relay", r.Reachability.Relay)
	}
	row("Peers", status.Thousands(int64(r.Peers.Count)))
	hops := make([]string, 0, status.MaxHop+2)
	for _, h := range status.Hops() {
		if n := r.Users.Count(h); n > 0 {
			hops = append(hops, fmt.Sprintf("hop %s: %d", h, n))
		}
	}
	users := status.Thousands(int64(r.Users.Total()))
	if len(hops) > 0 {
		users += " (" + strings.Join(hops, ", ") + ")"
	}
	row("Users", users)
	row("Channels", status.Thousands(int64(r.PeopleChannels())))
	row("Messages", status.Thousands(r.Messages.Count)+" ("+status.Bytes(uint64(max(r.Messages.Bytes, 0)))+")")
	if n := r.ControlChannels(); n > 0 || r.Messages.ControlCount > 0 {
		row("Control", fmt.Sprintf("%s messages (%s) in %d channel(s): device and node lists, cover traffic",
			status.Thousands(r.Messages.ControlCount), status.Bytes(uint64(max(r.Messages.ControlBytes, 0))), n))
	}
	row("Disk", fmt.Sprintf("%s free of %s (%s)", status.Bytes(r.Disk.FreeBytes), status.Bytes(r.Disk.TotalBytes), r.Disk.Path))
	row("Memory", status.Bytes(r.Memory.RSSBytes))
	if r.CPUTempCelsius != nil {
		row("Temperature", fmt.Sprintf("%.1f °C", *r.CPUTempCelsius))
	}
	if t := r.Throttling; t.Known {
		switch {
		case t.UnderVoltage:
			row("Power", "UNDER-VOLTAGE now")
		case t.Throttled || t.FrequencyCapped:
			row("Power", "throttled now")
		case t.UnderVoltageOccurred || t.ThrottledOccurred:
			row("Power", "fine now; trouble since boot")
		default:
			row("Power", "fine")
		}
	}
	if r.Clock.Synchronized {
		row("Clock", "synchronised")
	} else {
		row("Clock", "NOT synchronised: timestamps not trusted yet")
	}
	for _, warn := range r.Warnings {
		row("Warning", warn)
	}
	return tw.Flush()
}

// RenderPeers writes one row per connected peer.
func RenderPeers(w io.Writer, peers []status.Peer) error {
	if len(peers) == 0 {
		_, err := fmt.Fprintln(w, "No peers connected.")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "PEER\tDIRECTION\tLATENCY\tADDRESS")
	for _, p := range peers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Direction, status.Duration(p.Latency), p.Addr)
	}
	return tw.Flush()
}

// RenderUsers writes one row per registered user, nearest hops first as
// the backend orders them.
func RenderUsers(w io.Writer, users []status.User, now time.Time) error {
	if len(users) == 0 {
		_, err := fmt.Fprintln(w, "No registered users.")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "HOP\tIDENTITY\tSPONSOR\tREGISTERED")
	for _, u := range users {
		sponsor := u.Sponsor
		if sponsor == "" {
			sponsor = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Hop, u.Identity, status.ShortID(sponsor), ago(now, u.Registered))
	}
	return tw.Flush()
}

// RenderBranch writes who brought a channel in and through which chain,
// so the owner sees the trust-chain branch a flood came through.
func RenderBranch(w io.Writer, users []status.User) error {
	if len(users) == 0 {
		_, err := fmt.Fprintln(w, "No registered user asked for this channel.")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "HOP\tIDENTITY\tTRUST CHAIN")
	for _, u := range users {
		chain := "-"
		if len(u.Chain) > 0 {
			short := make([]string, len(u.Chain))
			for i, c := range u.Chain {
				short[i] = status.ShortID(c)
			}
			chain = strings.Join(short, " → ") + " → " + status.ShortID(u.Identity)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Hop, u.Identity, chain)
	}
	return tw.Flush()
}

// RenderChannels writes one row per served channel.
func RenderChannels(w io.Writer, chans []status.Channel, now time.Time) error {
	if len(chans) == 0 {
		_, err := fmt.Fprintln(w, "No channels served.")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "CHANNEL\tMESSAGES\tSIZE\tNEWEST\tSTATE")
	for _, c := range chans {
		state := "served"
		if c.Blocked {
			state = "BLOCKED"
		} else if c.Control {
			state = "control"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, status.Thousands(c.Messages),
			status.Bytes(uint64(max(c.Bytes, 0))), ago(now, c.Newest), state)
	}
	return tw.Flush()
}

// RenderRevoked says who a revocation removed.
func RenderRevoked(w io.Writer, ids []string) error {
	if len(ids) == 0 {
		_, err := fmt.Fprintln(w, "Nobody was removed.")
		return err
	}
	fmt.Fprintf(w, "Revoked %d identit%s:\n", len(ids), map[bool]string{true: "y", false: "ies"}[len(ids) == 1])
	for _, id := range ids {
		if _, err := fmt.Fprintf(w, "  %s\n", id); err != nil {
			return err
		}
	}
	return nil
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return status.Duration(now.Sub(t)) + " ago"
}
