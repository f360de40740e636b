package discovery

import (
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// lookupBackoff spaces out the upkeep's provider lookups for channels
// whose last lookup found no super node to add. A channel served by
// fewer nodes than MinPeers (most conversations: two or three homes)
// never reaches MinPeers, and before this every served channel of that
// kind cost two full DHT lookups every MaintainInterval, forever: the
// largest share of a home's DHT traffic, growing with the number of such
// channels, not with anything found (docs/SCALE.md).
//
// When the lookup found only super nodes already connected, the wait
// doubles from min up to max; when it found others that could not be
// reached, the next lookup waits until the first of them may be tried
// again (its failure backoff), not longer. A lookup is due at once when a
// peer of the channel was lost since (fewer connected than at the last
// lookup), when the statement is renewed, or on Refresh. A new super
// node need not wait for it: the new one looks the channel up and
// connects, and the statements exchanged authorize both sides. Callers
// hold Service.mu.
type lookupBackoff struct {
	min, max time.Duration
	m        map[channel.ID]*lookupWait
}

type lookupWait struct {
	until time.Time
	wait  time.Duration
	have  int // connected super nodes at the fruitless lookup
}

func newLookupBackoff(lo, hi time.Duration) lookupBackoff {
	return lookupBackoff{min: lo, max: max(hi, lo), m: map[channel.ID]*lookupWait{}}
}

// due reports whether ch's providers should be looked up now, with have
// super nodes connected.
func (b *lookupBackoff) due(ch channel.ID, have int, now time.Time) bool {
	w := b.m[ch]
	if w == nil {
		return true
	}
	if have < w.have {
		delete(b.m, ch)
		return true
	}
	return !now.Before(w.until)
}

// fruitless records a lookup for ch that added no super node.
func (b *lookupBackoff) fruitless(ch channel.ID, have int, now time.Time) {
	w := b.m[ch]
	if w == nil {
		w = &lookupWait{}
		b.m[ch] = w
	}
	w.wait = min(max(2*w.wait, b.min), b.max)
	w.until = now.Add(w.wait)
	w.have = have
}

// until records a lookup for ch that found super nodes it could not
// reach: the next is due at t, and a fruitless one after it waits min.
func (b *lookupBackoff) until(ch channel.ID, have int, t time.Time) {
	b.m[ch] = &lookupWait{until: t, have: have}
}

// reset makes ch's next lookup due at once.
func (b *lookupBackoff) reset(ch channel.ID) { delete(b.m, ch) }

// resetAll makes every channel's next lookup due at once.
func (b *lookupBackoff) resetAll() { clear(b.m) }
