package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Render writes the report as a short labelled summary for a person: the
// text of `homenode status` and of the owner's `redpanda node status`.
func Render(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if k == "" { // a continuation of the row above: no label
			fmt.Fprintf(tw, "\t%s\n", v)
			return
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	row("Node", r.Node.PeerID)
	row("Version", r.Version+", up "+Duration(r.Uptime))
	if u := r.Update; u != nil {
		row("Update", updateSummary(u))
	}
	if r.Board != "" {
		row("Board", r.Board)
	}
	switch r.Pairing.State {
	case PairingOwned:
		row("Pairing", "owned by "+r.Pairing.Owner)
	case PairingWaiting:
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
	row("Peers", Thousands(int64(r.Peers.Count)))
	hops := make([]string, 0, MaxHop+2)
	for _, h := range Hops() {
		if n := r.Users.Count(h); n > 0 {
			hops = append(hops, fmt.Sprintf("hop %s: %d", h, n))
		}
	}
	users := Thousands(int64(r.Users.Total()))
	if len(hops) > 0 {
		users += " (" + strings.Join(hops, ", ") + ")"
	}
	row("Users", users)
	row("Channels", Thousands(int64(r.PeopleChannels())))
	row("Messages", Thousands(r.Messages.Count)+" ("+Bytes(uint64(max(r.Messages.Bytes, 0)))+")")
	if n := r.ControlChannels(); n > 0 || r.Messages.ControlCount > 0 {
		row("Control", fmt.Sprintf("%s messages (%s) in %d channel(s): device and node lists, cover traffic",
			Thousands(r.Messages.ControlCount), Bytes(uint64(max(r.Messages.ControlBytes, 0))), n))
	}
	row("Disk", fmt.Sprintf("%s free of %s (%s)", Bytes(r.Disk.FreeBytes), Bytes(r.Disk.TotalBytes), r.Disk.Path))
	row("Memory", Bytes(r.Memory.RSSBytes))
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

// updateSummary is the Update row of Render.
func updateSummary(u *Update) string {
	s := "slot " + u.Slot
	if l := u.Line(); l != "" {
		s += "; " + l
	}
	if u.Last != "" {
		s += "; last: " + u.Last
	}
	if u.DevKeys {
		s += "; trusts the DEVELOPMENT release key"
	}
	return s
}
