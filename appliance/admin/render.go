package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redpanda-p2p/homenode/status"
)

// WriteJSON writes v as indented JSON, the `--json` output of every
// subcommand.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

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
