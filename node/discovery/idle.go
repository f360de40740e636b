package discovery

import "time"

// lookupWait spaces out the upkeep's provider lookups of one served
// channel while they find no super node to add. A channel served by fewer
// nodes than MinPeers (most conversations: two or three homes) never
// reaches MinPeers; without this every such channel cost two full DHT
// lookups every MaintainInterval, forever: most of a home's DHT traffic,
// growing with the number of such channels, not with anything found
// (docs/SCALE.md), and a channel a stranger floods with fake providers
// would be looked up as often.
//
// The policy: after a lookup that added no super node and left no
// candidate untried, the wait doubles from MaintainInterval up to
// MaxLookupBackoff; if the lookup found super nodes that could not be
// reached, the next one waits at least until the first of them may be
// tried again (their failure backoff; a lookup before that would skip
// them all). A lookup is due at once when a super node of the channel was
// lost since (fewer connected than at the fruitless lookup), when a newer
// statement arrives, on Refresh, and after a lookup that added someone or
// left candidates for the next round. A new super node need not wait for
// it: the new one looks the channel up and connects, and the statements
// exchanged authorize both sides. Callers hold Service.mu.
type lookupWait struct {
	next time.Time     // no lookup before
	wait time.Duration // the last wait; 0 after a fruitful lookup
	have int           // super nodes connected at the fruitless lookup
}

// due reports whether the channel's providers should be looked up at now,
// with have super nodes connected.
func (w *lookupWait) due(have int, now time.Time) bool {
	if have < w.have {
		*w = lookupWait{}
	}
	return !now.Before(w.next)
}

// done records a lookup at now with have super nodes connected before it:
// found if it added one or left candidates, retry the earliest time one
// of the unreachable super nodes it found may be dialled again (zero if
// none).
func (w *lookupWait) done(found bool, have int, retry, now time.Time, lo, hi time.Duration) {
	if found {
		*w = lookupWait{}
		return
	}
	w.wait = min(max(2*w.wait, lo), max(hi, lo))
	w.next = now.Add(w.wait)
	if retry.After(w.next) {
		w.next = retry
	}
	w.have = have
}
