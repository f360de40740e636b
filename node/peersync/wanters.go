package peersync

import (
	"sync"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// wanters indexes the sessions by the channels their peers want, so that
// announcing a stored message costs the sessions that want its channel,
// not one lock and lookup in every session: with thousands of light
// clients connected, each wanting its own few channels, a node stores a
// message and tells a handful of them.
//
// The index is only ever a superset of who wants what: announce still
// asks each session it finds (peerWants), so a change on its way into the
// index never makes a session hear what it does not want. Lock order:
// wanters.mu before a session's mu; a session never holds its mu while it
// updates the index.
type wanters struct {
	mu   sync.RWMutex
	by   map[channel.ID]map[*session]struct{}
	peak int // the most channels by has held since it was last rebuilt
}

func newWanters() *wanters {
	return &wanters{by: map[channel.ID]map[*session]struct{}{}}
}

// update applies a change of ss's wants. Removals always apply; additions
// not once ss is closed, since drop may have run already and an entry
// added after it would keep the session forever.
func (w *wanters) update(ss *session, add, remove []channel.ID) {
	if len(add) == 0 && len(remove) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range remove {
		w.deleteLocked(ch, ss)
	}
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		return
	}
	for _, ch := range add {
		set := w.by[ch]
		if set == nil {
			set = map[*session]struct{}{}
			w.by[ch] = set
		}
		set[ss] = struct{}{}
	}
	w.peak = max(w.peak, len(w.by))
}

// drop removes a closed session from every channel it wants.
func (w *wanters) drop(ss *session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ch := range ss.wants {
		w.deleteLocked(ch, ss)
	}
	ss.svc.wantTotal.Add(-int64(len(ss.wants)))
	ss.wants = map[channel.ID]struct{}{}
	w.shrinkLocked()
}

// shrinkLocked rebuilds the index once it holds a quarter of the channels
// it once did: a Go map keeps its buckets after its keys are deleted, so
// the memory of many wants that came and went would stay.
func (w *wanters) shrinkLocked() {
	if w.peak < 1024 || len(w.by) > w.peak/4 {
		return
	}
	by := make(map[channel.ID]map[*session]struct{}, len(w.by))
	for ch, set := range w.by {
		by[ch] = set
	}
	w.by, w.peak = by, len(by)
}

func (w *wanters) deleteLocked(ch channel.ID, ss *session) {
	set := w.by[ch]
	delete(set, ss)
	if len(set) == 0 {
		delete(w.by, ch)
	}
}

// appendFor appends the sessions whose peers may want ch to out.
func (w *wanters) appendFor(ch channel.ID, out []*session) []*session {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for ss := range w.by[ch] {
		out = append(out, ss)
	}
	return out
}
