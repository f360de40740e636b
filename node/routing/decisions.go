package routing

import (
	"strings"
	"sync/atomic"
)

// decisions counts the answers to registration requests by status, for
// the counters a person graphs.
type decisions [32]atomic.Uint64 // by Status; room for new statuses

func (d *decisions) add(s Status) {
	if i := int(s); i >= 0 && i < len(d) {
		d[i].Add(1)
	}
}

// Decisions returns how many registration requests this registry
// answered since it started, by outcome (every known one, zeros too): "ok", and the refusals by reason
// ("bad_chain", "hop_too_far", "node_full", "rate_limited", ...: the
// status names with "_" for spaces).
func (r *Registry) Decisions() map[string]uint64 {
	out := map[string]uint64{}
	for st := range statusNames { // zeros too, so a graph starts at 0
		out[StatusLabel(st)] = 0
	}
	for i := range r.decided {
		if n := r.decided[i].Load(); n > 0 {
			out[StatusLabel(Status(i))] = n
		}
	}
	return out
}

// StatusLabel is a status as a metric label: "node full" is "node_full".
func StatusLabel(s Status) string {
	return strings.ReplaceAll(s.String(), " ", "_")
}
