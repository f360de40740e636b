package peersync

import (
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// maxAnnouncers bounds the fallbacks remembered per message.
const maxAnnouncers = 8

// offer is a message a peer says it has.
type offer struct {
	id   channel.MessageID
	ch   channel.ID
	size int // as announced; 0 when not known
}

// pendingFetch is a body this node wants and has not stored yet.
type pendingFetch struct {
	ch         channel.ID
	size       int       // what the fetch counts against an announcer's window
	announcers []peer.ID // in the order they offered it
	next       int       // index of the next announcer to ask
	asked      peer.ID   // announcer asked now, "" if none
	waitingOn  peer.ID   // announcer whose in-flight limit it waits for
	deadline   time.Time
	delivering bool // a body arrived and is being ingested
}

// fetcher fetches each body once: from the first announcer, then from the
// next one when the asked one times out, answers NotFound or disconnects.
// Each announcer has a window of fetches left unanswered, bounded by count
// (Config.MaxInFlight and the peer's Hello) and by announced bytes
// (Config.FetchBytes): small messages get a window wide enough for a
// node-to-node rate of thousands per second, large ones the old 64.
type fetcher struct {
	s        *Service
	mu       sync.Mutex
	pending  map[channel.MessageID]*pendingFetch
	inflight map[peer.ID]window
	waiting  map[peer.ID][]channel.MessageID
}

// window is what one announcer has been asked for and not answered yet.
type window struct{ n, bytes int }

func newFetcher(s *Service) *fetcher {
	return &fetcher{
		s:        s,
		pending:  map[channel.MessageID]*pendingFetch{},
		inflight: map[peer.ID]window{},
		waiting:  map[peer.ID][]channel.MessageID{},
	}
}

// sends collects Fetch requests to send once the lock is released.
type sends map[peer.ID][]channel.MessageID

func (f *fetcher) flush(out sends) {
	for p, ids := range out {
		if ss := f.s.sessionFor(p); ss != nil {
			ss.sendFetch(ids)
		}
	}
}

// offer records that p has these messages and fetches the ones this node
// lacks. It filters offers in place.
func (f *fetcher) offer(p peer.ID, offers []offer) {
	fresh := offers[:0]
	for _, o := range offers {
		if f.s.rejected.has(o.id) {
			continue
		}
		if ok, err := f.s.db.Has(o.id); err != nil || ok {
			continue
		}
		fresh = append(fresh, o)
	}
	if len(fresh) == 0 {
		return
	}
	out := sends{}
	f.mu.Lock()
	for _, o := range fresh {
		pf := f.pending[o.id]
		if pf == nil {
			if len(f.pending) >= f.s.cfg.MaxPending {
				// Reconciliation fetches it later; memory stays bounded.
				continue
			}
			// Asked again under the lock: a fetch of this ID may have
			// finished (stored, then finish deleted its entry) since the
			// check above, and without this it would be fetched twice.
			if ok, err := f.s.db.Has(o.id); err != nil || ok {
				continue
			}
			pf = &pendingFetch{ch: o.ch, size: fetchCost(o.size)}
			f.pending[o.id] = pf
		}
		if pf.ch != o.ch || len(pf.announcers) >= maxAnnouncers || contains(pf.announcers, p) {
			continue
		}
		pf.announcers = append(pf.announcers, p)
		if pf.asked == "" && pf.waitingOn == "" && !pf.delivering {
			f.assign(o.id, pf, out)
		}
	}
	f.mu.Unlock()
	f.flush(out)
}

func contains(ps []peer.ID, p peer.ID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// fetchCost is what a fetch of an announced size counts against a
// window: an unknown or impossible size counts as the largest envelope.
func fetchCost(size int) int {
	if size <= 0 || size > channel.MaxEnvelopeSize {
		return channel.MaxEnvelopeSize
	}
	return size
}

// full reports whether p's window has no room for a fetch of size bytes.
// An empty window always takes one, whatever its size. f.mu is held.
func (f *fetcher) full(p peer.ID, size int) bool {
	w := f.inflight[p]
	return w.n >= f.limit(p) || w.n > 0 && w.bytes+size > f.s.cfg.FetchBytes
}

func (f *fetcher) limit(p peer.ID) int {
	n := f.s.cfg.MaxInFlight
	if ss := f.s.sessionFor(p); ss != nil {
		n = min(n, ss.peerMaxInFlight())
	}
	return n
}

// assign asks the next announcer that is connected, or queues the message
// behind that announcer's in-flight limit, or gives up when none is left.
// f.mu is held.
func (f *fetcher) assign(id channel.MessageID, pf *pendingFetch, out sends) {
	for pf.next < len(pf.announcers) {
		c := pf.announcers[pf.next]
		if f.s.sessionFor(c) == nil {
			pf.next++
			continue
		}
		if f.full(c, pf.size) {
			pf.waitingOn = c
			f.waiting[c] = append(f.waiting[c], id)
			return
		}
		pf.next++
		pf.asked = c
		pf.deadline = time.Now().Add(f.s.cfg.FetchTimeout)
		w := f.inflight[c]
		f.inflight[c] = window{n: w.n + 1, bytes: w.bytes + pf.size}
		out[c] = append(out[c], id)
		return
	}
	// Every announcer failed it (timed out, NotFound, gone): the next
	// reconcile with those still connected fetches it if they have it,
	// instead of it waiting for a reconnect.
	for _, c := range pf.announcers {
		if ss := f.s.sessionFor(c); ss != nil {
			ss.needResync.Store(true)
		}
	}
	delete(f.pending, id)
}

// release frees the room of one fetch of size bytes in p's window and
// hands it to waiting messages, in order. f.mu is held.
func (f *fetcher) release(p peer.ID, size int, out sends) {
	if w := f.inflight[p]; w.n > 0 {
		f.inflight[p] = window{n: w.n - 1, bytes: max(0, w.bytes-size)}
	}
	for len(f.waiting[p]) > 0 {
		id := f.waiting[p][0]
		pf := f.pending[id]
		if pf == nil || pf.waitingOn != p {
			f.waiting[p] = f.waiting[p][1:]
			continue
		}
		if f.full(p, pf.size) {
			break
		}
		f.waiting[p] = f.waiting[p][1:]
		pf.waitingOn = ""
		f.assign(id, pf, out)
	}
	if len(f.waiting[p]) == 0 {
		delete(f.waiting, p)
	}
}

type claim int

const (
	claimOK          claim = iota
	claimLate              // already delivered or being delivered: drop quietly
	claimUnsolicited       // p was never asked for it
)

// claim decides what to do with a body p sent.
func (f *fetcher) claim(p peer.ID, id channel.MessageID) claim {
	out := sends{}
	defer f.flush(out)
	f.mu.Lock()
	defer f.mu.Unlock()
	pf := f.pending[id]
	if pf == nil {
		if ok, _ := f.s.db.Has(id); ok {
			return claimLate
		}
		return claimUnsolicited
	}
	if pf.delivering {
		return claimLate
	}
	// An announcer that timed out may still deliver: take the body.
	if pf.asked != p && !contains(pf.announcers[:pf.next], p) {
		return claimUnsolicited
	}
	if pf.asked != "" {
		c := pf.asked
		pf.asked = ""
		f.release(c, pf.size, out)
	}
	pf.waitingOn = ""
	pf.delivering = true
	return claimOK
}

// announcers returns the peers that offered id: they need no announcement.
func (f *fetcher) announcers(id channel.MessageID) []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pf := f.pending[id]; pf != nil {
		return append([]peer.ID(nil), pf.announcers...)
	}
	return nil
}

// finish ends a claimed fetch with the ingest result.
func (f *fetcher) finish(id channel.MessageID, err error) {
	f.mu.Lock()
	delete(f.pending, id)
	f.mu.Unlock()
	if err != nil && !errors.Is(err, store.ErrExists) && permanent(reasonFor(err)) {
		f.s.rejected.add(id)
	}
}

// notFound moves the named messages on to their next announcer.
func (f *fetcher) notFound(p peer.ID, ids []channel.MessageID) {
	out := sends{}
	f.mu.Lock()
	for _, id := range ids {
		if pf := f.pending[id]; pf != nil && pf.asked == p {
			pf.asked = ""
			f.release(p, pf.size, out)
			f.assign(id, pf, out)
		}
	}
	f.mu.Unlock()
	f.flush(out)
}

// expire moves fetches past their deadline on to the next announcer.
func (f *fetcher) expire(now time.Time) {
	out := sends{}
	f.mu.Lock()
	for id, pf := range f.pending {
		if pf.asked != "" && !pf.delivering && now.After(pf.deadline) {
			c := pf.asked
			pf.asked = ""
			f.release(c, pf.size, out)
			if pf.asked == "" && pf.waitingOn == "" {
				f.assign(id, pf, out)
			}
		}
	}
	f.mu.Unlock()
	f.flush(out)
}

// peerGone moves everything asked of or queued behind p elsewhere.
func (f *fetcher) peerGone(p peer.ID) {
	out := sends{}
	f.mu.Lock()
	queued := f.waiting[p]
	delete(f.waiting, p)
	delete(f.inflight, p)
	for _, id := range queued {
		if pf := f.pending[id]; pf != nil && pf.waitingOn == p {
			pf.waitingOn = ""
			pf.next++
			f.assign(id, pf, out)
		}
	}
	for id, pf := range f.pending {
		if pf.asked == p && !pf.delivering {
			pf.asked = ""
			f.assign(id, pf, out)
		}
	}
	f.mu.Unlock()
	f.flush(out)
}
