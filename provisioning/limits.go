package provisioning

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Pairing limits, all per source address (an IPv4 address, an IPv6 /56,
// or the relay a peer came through: internal/peerlimit.ConnKey): peer IDs
// cost nothing, addresses do, and a limit that every stranger shares is
// one a stranger can use up to keep the owner's phone out.
const (
	// maxOpenPerAddr bounds the sessions of one address that have read
	// their challenge and not yet sent a proof. They hold no slot; past
	// the bound the oldest is reset, so a phone that retries always gets
	// its challenge.
	maxOpenPerAddr = 4
	// maxOpen bounds such sessions over all addresses (memory); past it
	// the oldest anywhere is reset.
	maxOpen = 256
	// maxPending bounds the proofs of one address waiting for their turn
	// (the delay after its failures, then the verdict); more get the
	// result Busy at once.
	maxPending = 4
	// maxAddrs bounds the addresses whose failures are remembered; the
	// one idle longest is forgotten first.
	maxAddrs = 4096
	// forgetAfter is how long an address's failures are remembered after
	// its last attempt.
	forgetAfter = time.Hour
)

// addrState is what the node remembers of one source address.
type addrState struct {
	failures int       // consecutive failed verdicts
	last     time.Time // last attempt
	pending  int       // proofs waiting or being judged
	open     []*openSession
}

type openSession struct {
	s   network.Stream
	key string
}

// sessions tracks, per address, the open sessions, the proofs waiting and
// the failures.
type sessions struct {
	mu    sync.Mutex
	addrs map[string]*addrState
	open  []*openSession // every open session, oldest first
}

func newSessions() *sessions { return &sessions{addrs: map[string]*addrState{}} }

func (ss *sessions) state(key string, now time.Time) *addrState {
	a := ss.addrs[key]
	if a == nil {
		if len(ss.addrs) >= maxAddrs {
			ss.forgetLocked(now)
		}
		a = &addrState{}
		ss.addrs[key] = a
	}
	a.last = now
	return a
}

// forgetLocked drops addresses with nothing in progress: first those
// not seen for forgetAfter, else the one idle longest.
func (ss *sessions) forgetLocked(now time.Time) {
	var oldest string
	for k, a := range ss.addrs {
		if a.pending > 0 || len(a.open) > 0 {
			continue
		}
		if now.Sub(a.last) > forgetAfter {
			delete(ss.addrs, k)
			continue
		}
		if oldest == "" || a.last.Before(ss.addrs[oldest].last) {
			oldest = k
		}
	}
	if len(ss.addrs) >= maxAddrs && oldest != "" {
		delete(ss.addrs, oldest)
	}
}

// opened records a session that is about to send its challenge; it
// resets the oldest open session of the address (or anywhere) past the
// bounds. done must be called once the proof is read or the session ends.
func (ss *sessions) opened(key string, s network.Stream, now time.Time) (done func()) {
	o := &openSession{s: s, key: key}
	var evict []*openSession
	ss.mu.Lock()
	a := ss.state(key, now)
	a.open = append(a.open, o)
	ss.open = append(ss.open, o)
	if len(a.open) > maxOpenPerAddr {
		evict = append(evict, a.open[0])
		ss.dropLocked(a.open[0])
	}
	if len(ss.open) > maxOpen {
		evict = append(evict, ss.open[0])
		ss.dropLocked(ss.open[0])
	}
	ss.mu.Unlock()
	for _, e := range evict {
		_ = e.s.Reset()
	}
	return func() {
		ss.mu.Lock()
		ss.dropLocked(o)
		ss.mu.Unlock()
	}
}

func (ss *sessions) dropLocked(o *openSession) {
	remove := func(l []*openSession) []*openSession {
		for i, x := range l {
			if x == o {
				return append(l[:i], l[i+1:]...)
			}
		}
		return l
	}
	ss.open = remove(ss.open)
	if a := ss.addrs[o.key]; a != nil {
		a.open = remove(a.open)
	}
}

// take gives the address a slot for a proof and returns its failures so
// far; ok is false when its slots are all taken (Busy).
func (ss *sessions) take(key string, now time.Time) (failures int, ok bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	a := ss.state(key, now)
	if a.pending >= maxPending {
		return a.failures, false
	}
	a.pending++
	return a.failures, true
}

// give returns the slot with the verdict: a failure adds to the
// address's count, a pairing clears it.
func (ss *sessions) give(key string, paired bool) (failures int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	a := ss.addrs[key]
	if a == nil {
		return 0
	}
	a.pending--
	if paired {
		a.failures = 0
	} else {
		a.failures++
	}
	return a.failures
}

// clear forgets every count (a factory reset).
func (ss *sessions) clear() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, a := range ss.addrs {
		a.failures = 0
	}
}
