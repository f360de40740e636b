package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// Tunables of the WAL and its applier; variables so tests can vary them.
var (
	// applyMsgs, applyBytes and applyAge: the applier moves the open group
	// into bbolt once it holds this many messages or bytes, or its oldest
	// message is this old. Larger transactions rewrite each touched bbolt
	// page once for more messages.
	applyMsgs  = 2048
	applyBytes = 8 << 20
	applyAge   = 200 * time.Millisecond
	// maxPendingMsgs and maxPendingBytes bound the acknowledged messages
	// held in memory until applied; Put waits (back-pressure) beyond them.
	maxPendingMsgs  = 8192
	maxPendingBytes = 32 << 20
	// maxPutBatch bounds the Puts sharing one WAL write and fdatasync.
	maxPutBatch = 1024
	// walPreallocMin: a segment that took at least this many bytes is
	// followed by a preallocated one (see createSegment). An append that
	// grows the file makes its fdatasync commit the filesystem journal,
	// queued behind bbolt's commits and the directory syncs; 1,000 msg/s
	// fills ~250 KB per applyAge, just under the 256 KiB this once was, so
	// every append of the relay benchmark paid that (16-60 ms spikes).
	walPreallocMin = int64(64 << 10)
	// applyRetry is how long the applier waits after a failed apply (a
	// full disk) before it tries again.
	applyRetry = time.Second
)

// kAppliedGen, in bInfo, is the generation of the last group applied from
// the WAL. A reader compares it with a pending group's generation to know
// whether its bbolt snapshot already holds the group. Older homenodes
// ignore the key; it needs no schema bump.
var kAppliedGen = []byte("walgen")

func getAppliedGen(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bInfo).Get(kAppliedGen); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// pmsg is an acknowledged message not yet known to be in bbolt.
type pmsg struct {
	id  channel.MessageID
	ch  channel.ID
	ts  int64
	raw []byte
}

// chanPending is one channel's share of a group.
type chanPending struct {
	stats chanStats
	msgs  []*pmsg
}

// group is the messages of one WAL segment. The open group (gen 0) takes
// new Puts; a sealed group (gen > 0) is being or waiting to be applied.
type group struct {
	gen     uint64
	segPath string // the segment holding its records; "" if none
	// replayed: loaded from a WAL at Open, so its messages may already
	// be in bbolt. A live group's cannot be: Put checked.
	replayed bool
	byID     map[channel.MessageID]*pmsg
	chans    map[channel.ID]*chanPending
	tot      totals
	born     time.Time // when its first message arrived
}

func newGroup() *group {
	return &group{byID: map[channel.MessageID]*pmsg{}, chans: map[channel.ID]*chanPending{}}
}

func (g *group) add(m *pmsg, now time.Time) {
	if len(g.byID) == 0 {
		g.born = now
	}
	g.byID[m.id] = m
	cp := g.chans[m.ch]
	if cp == nil {
		cp = &chanPending{stats: chanStats{newest: m.ts}}
		g.chans[m.ch] = cp
	}
	cp.msgs = append(cp.msgs, m)
	cp.stats.count++
	cp.stats.bytes += uint64(len(m.raw))
	cp.stats.newest = max(cp.stats.newest, m.ts)
	g.tot.count++
	g.tot.bytes += uint64(len(m.raw))
}

// pendingTable holds the groups, oldest first; the last one is open.
// mu is held shared by readers for the whole of a read (see snap) and
// exclusively to add messages, seal or drop a group; cond (on mu) wakes a
// Put waiting for room.
type pendingTable struct {
	mu     sync.RWMutex
	cond   *sync.Cond
	groups []*group
	count  int
	bytes  int64
	// applyErr is the last apply's failure (a full disk), nil once one
	// succeeds: a Put that finds the table full then fails rather than
	// wait for an applier that cannot make room.
	applyErr error
}

func (p *pendingTable) open() *group { return p.groups[len(p.groups)-1] }

func (p *pendingTable) full() bool {
	return p.count >= maxPendingMsgs || p.bytes >= int64(maxPendingBytes)
}

// snapshot is a consistent view for a reader: a bbolt read transaction
// and the pending groups that transaction does not yet hold. A message is
// in exactly one of the two.
type snapshot struct {
	tx     *bolt.Tx
	groups []*group
	filter *idFilter // loaded after tx began: it holds every ID tx holds
}

// snap runs fn on a snapshot. Holding p.mu shared across the start of the
// bbolt transaction and fn means no group can be sealed or dropped in
// between, and the applied generation read inside the transaction tells
// which sealed groups it already holds.
func (db *DB) snap(fn func(*snapshot) error) error {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return db.classify(db.bolt.View(func(tx *bolt.Tx) error {
		return safeCall(func(tx *bolt.Tx) error {
			applied := getAppliedGen(tx)
			s := &snapshot{tx: tx, filter: db.filter.Load()}
			for _, g := range db.pend.groups {
				if g.gen == 0 || g.gen > applied {
					s.groups = append(s.groups, g)
				}
			}
			return fn(s)
		}, tx)
	}))
}

// read is snap for the exported read methods: it fails with ErrClosed
// after Close.
func (db *DB) read(fn func(*snapshot) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.snap(fn)
}

func (s *snapshot) pending(id channel.MessageID) *pmsg {
	for _, g := range s.groups {
		if m := g.byID[id]; m != nil {
			return m
		}
	}
	return nil
}

func (s *snapshot) has(id channel.MessageID) bool {
	return s.pending(id) != nil || s.filter.mayHave(id[:]) && s.tx.Bucket(bIDs).Get(id[:]) != nil
}

// chanStats is a channel's counters over bbolt and the pending groups.
func (s *snapshot) chanStats(ch channel.ID) chanStats {
	cs := getChanStats(s.tx.Bucket(bChans), ch)
	for _, g := range s.groups {
		if cp := g.chans[ch]; cp != nil {
			cs.count += cp.stats.count
			cs.bytes += cp.stats.bytes
			cs.newest = max(cs.newest, cp.stats.newest)
		}
	}
	return cs
}

func (s *snapshot) totals() totals {
	t := getTotals(s.tx)
	for _, g := range s.groups {
		t.count += g.tot.count
		t.bytes += g.tot.bytes
	}
	return t
}

// pendingIn returns the channel's pending messages with timestamps in
// [from, to), ordered as the index orders them: by (timestamp, ID).
func (s *snapshot) pendingIn(ch channel.ID, from, to int64) []*pmsg {
	var out []*pmsg
	for _, g := range s.groups {
		if cp := g.chans[ch]; cp != nil {
			for _, m := range cp.msgs {
				if m.ts >= from && m.ts < to {
					out = append(out, m)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *pmsg) int {
		return cmp.Or(cmp.Compare(a.ts, b.ts), bytes.Compare(a.id[:], b.id[:]))
	})
	return out
}
