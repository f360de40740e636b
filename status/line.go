package status

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StatusLine is the one-line summary for systemd's STATUS=, shown by
// `systemctl status`: pairing first (what a person must do), then
// reachability and the counts. It never contains a newline, which would
// end the sd_notify assignment.
func StatusLine(r Report) string {
	parts := make([]string, 0, 7)
	switch r.Pairing.State {
	case PairingOwned:
		parts = append(parts, "owned by "+ShortID(r.Pairing.Owner))
	case PairingWaiting:
		parts = append(parts, "waiting for pairing")
	default:
		parts = append(parts, "starting, not paired")
	}
	if d := r.Reachability.Diagnosis; d != "" {
		if a := r.Reachability.ExternalAddr; a != "" {
			d += " " + a
		}
		parts = append(parts, d)
	}
	parts = append(parts,
		plural(int64(r.Peers.Count), "peer", "peers"),
		plural(int64(r.Users.Total()), "user", "users"),
		plural(r.Messages.Count, "message", "messages"))
	if !r.Clock.Synchronized {
		parts = append(parts, "clock not synchronised")
	}
	if n := len(r.Warnings); n > 0 {
		parts = append(parts, plural(int64(n), "warning", "warnings"))
	}
	if u := r.Update.Line(); u != "" {
		parts = append(parts, u)
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, strings.Join(parts, "; "))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Thousands(n) + " " + many
}

// Thousands formats n with comma separators: 1234567 -> "1,234,567".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ShortID shortens a long peer or identity ID to its head and tail, which
// is how people compare IDs by eye. Short IDs are returned unchanged.
func ShortID(id string) string {
	const head, tail = 8, 6
	if len(id) <= head+tail+3 {
		return id
	}
	return id[:head] + "…" + id[len(id)-tail:]
}

// Bytes formats a byte count in binary units: 1536 -> "1.5 KiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Duration formats an uptime or latency for people: "3d 4h", "2h 5m",
// "1m 30s", "42ms".
func Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
