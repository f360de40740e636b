package peersync

import (
	"fmt"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Range-based set reconciliation (A. Meyer, "Range-Based Set
// Reconciliation"; the scheme of Negentropy) over one channel's messages,
// with time ranges [from, to) in Unix ms as the bounds. Each side answers
// every range it receives:
//   - a fingerprint equal to its own: nothing (the range is in sync);
//   - a fingerprint that differs: its own IDs when it holds few (or the
//     range is 1 ms wide), else fanout sub-ranges, each with its own
//     fingerprint (or an empty ID list when it holds none there);
//   - an ID list: it now knows both differences; it fetches what it lacks
//     and announces what the peer lacks, and the range is done.
//
// A round with no ranges left ends the exchange. Only mismatching ranges
// are split, so the bytes exchanged grow with the number of differences
// (times the depth, log_fanout(window)), not with the messages stored.
const (
	fanout = 16
	// idListThreshold is the most IDs a side lists instead of splitting.
	idListThreshold = 32
	// maxGivePerRange bounds the headers announced for one ID-list range;
	// the rest waits for the next reconcile.
	maxGivePerRange = 1 << 14
	// roundBudget bounds the bytes of ID lists in one Reconcile frame, well
	// under wire.MaxFrameSize; ranges over budget are echoed unsplit.
	roundBudget = wire.MaxFrameSize / 2
)

// rangeSource is what reconciliation reads: the store.
type rangeSource interface {
	Fingerprint(ch channel.ID, fromMs, toMs int64) (store.Fingerprint, error)
	Headers(ch channel.ID, fromMs, toMs int64, limit int) ([]store.Header, error)
}

// reconcileStep answers one received round. It returns the ranges to send
// back, the IDs this side lacks and the headers the peer lacks.
// truncated reports that some differences were left for a later round.
func reconcileStep(src rangeSource, ch channel.ID, in []*wirepb.Range) (out []*wirepb.Range, need []channel.MessageID, give []store.Header, truncated bool, err error) {
	budget := roundBudget
	for _, r := range in {
		from, to := r.GetFromMs(), r.GetToMs()
		switch m := r.GetMode().(type) {
		case *wirepb.Range_Fingerprint:
			mine, err := src.Fingerprint(ch, from, to)
			if err != nil {
				return nil, nil, nil, false, fmt.Errorf("sync: reconcile fingerprint: %w", err)
			}
			if uint64(mine.Count) == m.Fingerprint.GetCount() && string(mine.XOR[:]) == string(m.Fingerprint.GetXor()) {
				continue
			}
			room := wire.MaxRangesPerFrame - len(out)
			switch {
			case room <= 0:
				truncated = true
			case mine.Count <= idListThreshold || width(from, to) <= 1:
				// A 1-ms range can hold more IDs than a frame lists: list
				// part now, the rest in a later reconcile.
				n := min(mine.Count, wire.MaxIDsPerFrame)
				cost := n*(len(channel.MessageID{})+2) + 32
				if cost > budget && len(out) > 0 {
					out = append(out, fpRange(from, to, mine)) // next round
					continue
				}
				if n < mine.Count {
					truncated = true
				}
				rl, err := idRange(src, ch, from, to, n)
				if err != nil {
					return nil, nil, nil, false, err
				}
				out = append(out, rl)
				budget -= cost
			case room < fanout:
				// No room to split: echo our fingerprint, the peer splits.
				out = append(out, fpRange(from, to, mine))
			default:
				subs, err := split(src, ch, from, to)
				if err != nil {
					return nil, nil, nil, false, err
				}
				out = append(out, subs...)
			}
		case *wirepb.Range_Ids:
			hs, err := src.Headers(ch, from, to, maxGivePerRange+1)
			if err != nil {
				return nil, nil, nil, false, fmt.Errorf("sync: reconcile headers: %w", err)
			}
			if len(hs) > maxGivePerRange {
				hs, truncated = hs[:maxGivePerRange], true
			}
			theirs := make(map[channel.MessageID]struct{}, len(m.Ids.GetIds()))
			for _, b := range m.Ids.GetIds() {
				id, _ := wire.MessageID(b)
				theirs[id] = struct{}{}
			}
			for _, h := range hs {
				if _, ok := theirs[h.ID]; ok {
					delete(theirs, h.ID)
				} else {
					give = append(give, h)
				}
			}
			for id := range theirs {
				need = append(need, id)
			}
		}
	}
	return out, need, give, truncated, nil
}

// width is to-from without overflow (to > from).
func width(from, to int64) uint64 { return uint64(to) - uint64(from) }

func fpRange(from, to int64, f store.Fingerprint) *wirepb.Range {
	return &wirepb.Range{FromMs: from, ToMs: to, Mode: &wirepb.Range_Fingerprint{
		Fingerprint: &wirepb.Fingerprint{Count: uint64(f.Count), Xor: append([]byte(nil), f.XOR[:]...)},
	}}
}

func idRange(src rangeSource, ch channel.ID, from, to int64, limit int) (*wirepb.Range, error) {
	ids := [][]byte{}
	if limit > 0 {
		hs, err := src.Headers(ch, from, to, limit)
		if err != nil {
			return nil, fmt.Errorf("sync: reconcile headers: %w", err)
		}
		for _, h := range hs {
			ids = append(ids, append([]byte(nil), h.ID[:]...))
		}
	}
	return &wirepb.Range{FromMs: from, ToMs: to, Mode: &wirepb.Range_Ids{Ids: &wirepb.IDList{Ids: ids}}}, nil
}

// split cuts [from, to) into up to fanout sub-ranges of equal width, each
// with this side's fingerprint, or an empty ID list where it holds none
// (so the peer answers with what it has there, and that range is done).
func split(src rangeSource, ch channel.ID, from, to int64) ([]*wirepb.Range, error) {
	w := width(from, to)
	n := uint64(fanout)
	if w < n {
		n = w
	}
	out := make([]*wirepb.Range, 0, n)
	for i := uint64(0); i < n; i++ {
		a := int64(uint64(from) + w/n*i)
		b := to
		if i < n-1 {
			b = int64(uint64(from) + w/n*(i+1))
		}
		f, err := src.Fingerprint(ch, a, b)
		if err != nil {
			return nil, fmt.Errorf("sync: reconcile fingerprint: %w", err)
		}
		if f.Count == 0 {
			out = append(out, &wirepb.Range{FromMs: a, ToMs: b, Mode: &wirepb.Range_Ids{Ids: &wirepb.IDList{}}})
		} else {
			out = append(out, fpRange(a, b, f))
		}
	}
	return out, nil
}

// reconcileRun is a reconciliation this side started.
type reconcileRun struct {
	startMs int64
	again   bool // asked again while running: run once more when done
}

func (ss *session) skewMs() int64 {
	if d := ss.svc.cfg.Policy.MaxSkew; d > 0 {
		return d.Milliseconds()
	}
	return channel.DefaultMaxSkew.Milliseconds()
}

// reconcileShared starts reconciling the given channels (nil: all this
// node wants) that the peer wants too and Accept allows.
func (ss *session) reconcileShared(chs []channel.ID) {
	if chs == nil {
		chs = ss.svc.wantList()
	}
	ss.mu.Lock()
	if !ss.hello {
		ss.afterHello = append(ss.afterHello, chs...)
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	for _, ch := range chs {
		if ss.svc.Wants(ch) && ss.peerWants(ch) && ss.svc.accept(ss.peer, ch) {
			ss.startReconcile(ch)
		}
	}
}

// startReconcile opens a reconciliation of ch over the retention window,
// split at the last point this pair was in sync: usually the old part
// matches in one fingerprint and only the new part is worked on.
func (ss *session) startReconcile(ch channel.ID) {
	now := ss.svc.cfg.Now().UnixMilli()
	ss.mu.Lock()
	if r := ss.reconciling[ch]; r != nil {
		r.again = true
		ss.mu.Unlock()
		return
	}
	ss.reconciling[ch] = &reconcileRun{startMs: now}
	ss.mu.Unlock()
	lo := now - ss.svc.cfg.Retention.Milliseconds()
	hi := now + ss.skewMs() + 1
	bounds := []int64{lo, hi}
	if sp, err := ss.svc.db.SyncState(ss.peer.String(), ch); err == nil && sp > lo && sp < hi {
		bounds = []int64{lo, sp, hi}
	}
	var ranges []*wirepb.Range
	for i := 0; i+1 < len(bounds); i++ {
		f, err := ss.svc.db.Fingerprint(ch, bounds[i], bounds[i+1])
		if err != nil {
			ss.log.Warn("reconcile", "channel", ch, "err", err)
			ss.endReconcile(ch, false)
			return
		}
		ranges = append(ranges, fpRange(bounds[i], bounds[i+1], f))
	}
	ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: ch[:], Ranges: ranges}}}, false)
}

// endReconcile records the sync point of a finished run and starts the
// next one if it was asked for meanwhile.
func (ss *session) endReconcile(ch channel.ID, ok bool) {
	ss.mu.Lock()
	r := ss.reconciling[ch]
	delete(ss.reconciling, ch)
	ss.mu.Unlock()
	if r == nil {
		return
	}
	if ok {
		// Messages written up to the skew before the run started are in
		// sync; later ones may still be on their way.
		if err := ss.svc.db.SetSyncState(ss.peer.String(), ch, r.startMs-ss.skewMs()); err != nil {
			ss.log.Warn("saving sync state", "channel", ch, "err", err)
		}
	}
	if r.again {
		ss.startReconcile(ch)
	}
}

func (ss *session) onReconcile(rc *wirepb.Reconcile) error {
	ch, _ := wire.ChannelID(rc.GetChannel())
	if len(rc.GetRanges()) == 0 {
		ss.endReconcile(ch, true)
		return nil
	}
	var out []*wirepb.Range
	if ss.svc.Wants(ch) && ss.svc.accept(ss.peer, ch) {
		var need []channel.MessageID
		var give []store.Header
		var truncated bool
		var err error
		out, need, give, truncated, err = reconcileStep(ss.svc.db, ch, rc.GetRanges())
		if err != nil {
			// Our store failed, not the peer: end this round, keep the session.
			ss.log.Warn("reconcile", "channel", ch, "err", err)
			out = nil
		}
		if truncated {
			ss.needResync.Store(true)
		}
		if len(need) > 0 {
			offers := make([]offer, len(need))
			for i, id := range need {
				offers[i] = offer{id: id, ch: ch}
			}
			ss.svc.fetch.offer(ss.peer, offers)
		}
		if len(give) > 0 && ss.peerWants(ch) {
			hs := make([]wire.Header, len(give))
			for i, h := range give {
				hs[i] = wire.Header{ID: h.ID, Channel: h.Channel, Timestamp: h.Timestamp, Size: h.Size}
			}
			ss.sendAnnounce(hs)
		}
	}
	ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: ch[:], Ranges: out}}}, false)
	if len(out) == 0 {
		ss.endReconcile(ch, true)
	}
	return nil
}
