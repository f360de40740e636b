package provisioning

import "sync/atomic"

// attemptOutcomes are the metric labels of pairing attempts: one per
// Status, and "incomplete" for a session that ended before a verdict (the
// phone went away, a stream error).
var attemptOutcomes = [...]string{
	StatusPaired:     "paired",
	StatusRejected:   "rejected",
	StatusNotWaiting: "not_waiting",
	StatusBusy:       "busy",
	StatusMalformed:  "malformed",
	StatusFailed:     "failed",
}

const outcomeIncomplete = len(attemptOutcomes)

type attempts [outcomeIncomplete + 1]atomic.Uint64

// Attempts returns how many pairing sessions the node served since it
// started, by outcome: "paired", "rejected" (wrong, dead or foreign
// token), "not_waiting" (the node has an owner), "busy", "malformed",
// "failed", "incomplete".
func (p *Provisioner) Attempts() map[string]uint64 {
	out := map[string]uint64{}
	for i := range p.attempts { // zeros too, so a graph starts at 0
		name := "incomplete"
		if i < outcomeIncomplete {
			name = attemptOutcomes[i]
		}
		out[name] = p.attempts[i].Load()
	}
	return out
}
