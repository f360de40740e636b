package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// putReq is one Put waiting for the WAL's group commit.
type putReq struct {
	m    *pmsg
	done chan error
}

// putCommitter is the WAL's group commit: it takes every Put waiting,
// decides each one's outcome, appends the accepted ones in one write and
// fdatasyncs once. Like the bbolt committer it never waits for a timer: a
// lone writer pays one fdatasync and no added delay.
func (db *DB) putCommitter() {
	defer close(db.putsDone)
	batch := make([]*putReq, 0, maxPutBatch)
	var buf []byte
	for req := range db.puts {
		batch = drain(db.puts, append(batch[:0], req), maxPutBatch)
		buf = db.putBatch(batch, buf[:0])
	}
}

// putBatch commits one batch and answers every request in it. It returns
// buf for reuse.
func (db *DB) putBatch(batch []*putReq, buf []byte) []byte {
	fail := func(reqs []*putReq, err error) {
		for _, r := range reqs {
			r.done <- err
		}
	}
	// Back-pressure: wait for the applier to make room, unless it is
	// failing (a full disk), when waiting could last forever.
	db.pend.mu.Lock()
	for db.pend.full() && db.pend.applyErr == nil {
		db.kickApplier()
		db.pend.cond.Wait()
	}
	if db.pend.full() {
		err := db.pend.applyErr
		db.pend.mu.Unlock()
		fail(batch, err)
		return buf
	}
	db.pend.mu.Unlock()

	db.walMu.Lock()
	defer db.walMu.Unlock()
	if db.walBroken != nil {
		fail(batch, db.walBroken)
		return buf
	}
	outcomes := make([]error, len(batch))
	quota := db.newQuotaCheck()
	err := db.snap(func(s *snapshot) error {
		inBatch := make(map[channel.MessageID]bool, len(batch))
		chanBytes := map[channel.ID]uint64{}
		var batchBytes uint64
		tot := s.totals()
		for i, r := range batch {
			m := r.m
			if inBatch[m.id] || s.has(m.id) {
				outcomes[i] = ErrExists
				continue
			}
			size := uint64(len(m.raw))
			cb, ok := chanBytes[m.ch]
			if !ok {
				cb = s.chanStats(m.ch).bytes
			}
			if cb+size > uint64(db.opt.MaxChannelBytes) {
				outcomes[i] = fmt.Errorf("store: put %s: %w: channel %s holds %d of its %d bytes",
					m.id, ErrQuotaExceeded, m.ch, cb, db.opt.MaxChannelBytes)
				continue
			}
			if err := quota.check(s, m, size, tot.bytes+batchBytes); err != nil {
				outcomes[i] = err
				continue
			}
			quota.add(m.ch, size)
			inBatch[m.id] = true
			chanBytes[m.ch] = cb + size
			batchBytes += size
		}
		return nil
	})
	if err != nil {
		fail(batch, err)
		return buf
	}
	first := true
	var accepted []*pmsg
	for i, r := range batch {
		if outcomes[i] == nil {
			buf = appendRecord(buf, r.m.raw, first)
			first = false
			accepted = append(accepted, r.m)
		}
	}
	if len(accepted) > 0 {
		if err := db.appendWAL(buf); err != nil {
			for i := range outcomes {
				if outcomes[i] == nil {
					outcomes[i] = err
				}
			}
			accepted = nil
		}
	}
	if len(accepted) > 0 {
		quota.commit()
		now := time.Now()
		db.pend.mu.Lock()
		open := db.pend.open()
		open.segPath = db.seg.path
		for _, m := range accepted {
			open.add(m, now)
			db.pend.bytes += int64(len(m.raw))
		}
		db.pend.count += len(accepted)
		db.pend.mu.Unlock()
		db.kickApplier()
	}
	for i, r := range batch {
		r.done <- outcomes[i]
	}
	return buf
}

// appendWAL writes one batch to the current segment, creating one if the
// applier could not. Called with walMu held.
func (db *DB) appendWAL(batch []byte) error {
	if db.seg == nil {
		seg, err := createSegment(db.path, db.nextSeq, 0)
		if err != nil {
			return db.classify(fmt.Errorf("create WAL segment: %w", err))
		}
		db.nextSeq++
		db.seg = seg
	}
	err := db.seg.append(batch)
	if errors.Is(err, errWALBroken) {
		db.walBroken = db.classify(err)
		db.log.Error("write-ahead log unusable; Puts fail until restart", "file", db.seg.path, "err", err)
		return db.walBroken
	}
	if err != nil {
		return db.classify(fmt.Errorf("append to %s: %w", db.seg.path, err))
	}
	return nil
}

func (db *DB) kickApplier() {
	select {
	case db.kick <- struct{}{}:
	default:
	}
}

// applier moves sealed groups into bbolt: when the open group is due it
// seals it (switching Puts to a fresh segment first, so appends never wait
// for bbolt), applies it in one transaction, then drops it from memory and
// deletes its segment. It also serves flush requests and, when Close stops
// it, applies everything and removes the WAL.
func (db *DB) applier() {
	defer close(db.applierDone)
	var timer *time.Timer
	var timerC <-chan time.Time
	setTimer := func(d time.Duration) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		timerC = timer.C
	}
	for {
		force := false
		var job applierJob
		select {
		case <-db.kick:
		case <-timerC:
			timerC, force = nil, true
		case job = <-db.jobs:
			force = true
		case <-db.applierStop:
			db.applierErr = db.finalApply()
			return
		}
		db.pend.mu.RLock()
		open := db.pend.open()
		n, bytes, born := len(open.byID), open.tot.bytes, open.born
		sealed := len(db.pend.groups) > 1
		full, failing := db.pend.full(), db.pend.applyErr != nil
		db.pend.mu.RUnlock()
		// While applies fail (a full disk) only the retry timer or a
		// flush tries again, not every batch.
		due := force || !failing && (full || n >= applyMsgs || bytes >= uint64(applyBytes) || time.Since(born) >= applyAge)
		var err error
		switch {
		case n > 0 && due:
			db.seal(true)
			err = db.applySealed()
		case sealed && (force || !failing):
			err = db.applySealed()
		}
		if job.reply != nil {
			// A job may delete messages (Sweep, Wipe): the segments
			// that could replay them must be gone for good first.
			if serr := db.syncRemovals(); err == nil {
				err = serr
			}
			if job.fn != nil {
				err = job.fn(err)
			}
			job.reply <- err
		}
		if ferr := db.rebuildFilter(false); ferr != nil {
			db.log.Warn("cannot rebuild the ID filter; duplicate checks read the database more often", "err", ferr)
		}
		db.pend.mu.RLock()
		left, leftSealed := len(db.pend.open().byID), len(db.pend.groups) > 1
		db.pend.mu.RUnlock()
		switch {
		case err != nil || leftSealed:
			setTimer(applyRetry)
		case left > 0 && timerC == nil:
			setTimer(applyAge)
		}
	}
}

// seal closes the open group to new messages: Puts go to a new segment
// (made here, outside the locks, so an append waits only for the switch)
// and a new open group; the sealed group gets the next generation. Without
// rotate (no Put follows) no new segment is made.
func (db *DB) seal(rotate bool) {
	var next *segment
	if rotate {
		seq, prealloc := db.reserveSeq()
		var err error
		if next, err = createSegment(db.path, seq, prealloc); err != nil {
			// The committer makes one itself at its next append, and
			// fails that Put cleanly if it cannot either.
			db.log.Warn("cannot create the next WAL segment", "err", err)
			next = nil
		} else {
			// Its directory sync made earlier removals durable too.
			db.removedUnsynced = ""
		}
	}
	db.walMu.Lock()
	old := db.seg
	db.seg = next
	db.pend.mu.Lock()
	g := db.pend.open()
	g.gen = db.nextGen
	db.nextGen++
	db.pend.groups = append(db.pend.groups, newGroup())
	db.pend.mu.Unlock()
	db.walMu.Unlock()
	if old != nil {
		old.close()
	}
}

// reserveSeq hands out the next segment number, and how many bytes to
// preallocate: a little more than the current segment took, when that was
// a busy one. Under light load segments stay small and are not
// preallocated, so an SD card is not worn by zeros written for nothing.
func (db *DB) reserveSeq() (seq uint64, prealloc int64) {
	db.walMu.Lock()
	defer db.walMu.Unlock()
	seq = db.nextSeq
	db.nextSeq++
	if db.seg != nil && db.seg.size >= walPreallocMin {
		prealloc = min(db.seg.size*5/4, int64(applyBytes)+1<<20)
	}
	return seq, prealloc
}

// applySealed applies the sealed groups in order, stopping at the first
// failure (the next attempt resumes there).
func (db *DB) applySealed() error {
	for {
		db.pend.mu.RLock()
		var g *group
		if len(db.pend.groups) > 1 {
			g = db.pend.groups[0]
		}
		db.pend.mu.RUnlock()
		if g == nil {
			return nil
		}
		var err error
		if len(g.byID) > 0 { // an emptied group (sweepPending) has nothing to write
			err = db.applyGroup(g)
		}
		db.pend.mu.Lock()
		db.pend.applyErr = err
		if err == nil {
			db.pend.groups = db.pend.groups[1:]
			db.pend.count -= int(g.tot.count)
			db.pend.bytes -= int64(g.tot.bytes)
		}
		db.pend.cond.Broadcast()
		db.pend.mu.Unlock()
		if err != nil {
			db.log.Error("applying the write-ahead log to the database failed; will retry",
				"segment", g.segPath, "messages", len(g.byID), "err", err)
			return err
		}
		db.removeSegment(g.segPath)
	}
}

// removeSegment deletes an applied segment without syncing the directory:
// each directory sync is a filesystem journal commit, which the WAL's own
// fdatasync then queued behind (10-35 ms, the relay latency tail). A
// removal lost to a power cut only replays messages bbolt already holds,
// which replay skips, so durability can wait for the next segment's
// creation (createSegment syncs the same directory) or for
// syncRemovals, which runs before anything that deletes messages (Sweep,
// Wipe: a replay after them would bring deleted messages back) and at
// Close. Run by the applier (or Open before it starts) only.
func (db *DB) removeSegment(path string) {
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.log.Warn("cannot remove applied WAL segment (it is replayed harmlessly at the next start)", "file", path, "err", err)
		return
	}
	db.removedUnsynced = path
}

// syncRemovals makes the segment removals so far durable. It returns
// the sync's error: a caller about to delete messages must not go on.
func (db *DB) syncRemovals() error {
	if db.removedUnsynced == "" {
		return nil
	}
	if err := syncDir(db.removedUnsynced); err != nil {
		return db.classify(fmt.Errorf("sync the data directory after removing applied WAL segments: %w", err))
	}
	db.removedUnsynced = ""
	return nil
}

// finalApply runs when Close stops the applier, after the last Put:
// everything pending goes to bbolt and the WAL is removed. If that fails
// (a full disk) the segments stay and the next Open replays them.
func (db *DB) finalApply() error {
	db.pend.mu.RLock()
	n := len(db.pend.open().byID)
	db.pend.mu.RUnlock()
	if n > 0 {
		db.seal(false)
	}
	err := db.applySealed()
	if db.seg != nil {
		db.seg.close()
		if err == nil {
			db.removeSegment(db.seg.path)
		}
		db.seg = nil
	}
	if serr := db.syncRemovals(); err == nil && serr != nil {
		db.log.Warn("segments removed at close may be replayed (harmlessly) at the next start", "err", serr)
	}
	return err
}

// applierJob asks the applier to apply everything now and then to run fn,
// if set, with the apply's error; reply gets fn's result.
type applierJob struct {
	fn    func(applyErr error) error
	reply chan error
}

func (db *DB) runJob(fn func(error) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	reply := make(chan error, 1)
	db.jobs <- applierJob{fn: fn, reply: reply}
	return <-reply
}

// flush applies every message acknowledged before the call.
func (db *DB) flush() error { return db.runJob(nil) }

// sweepPending drops expired messages from the sealed groups when they
// cannot be applied (a full disk), and deletes the segments left with
// nothing: on a disk filled by the WAL, that is the only way retention can
// free space. A crash before the segment goes replays its expired
// messages, which the next sweep removes again. It returns how many it
// dropped. Run by the applier, so no apply overlaps it.
func (db *DB) sweepPending(cutoff int64) (removed int) {
	return db.dropPending(func(m *pmsg) bool { return m.ts < cutoff || cutoff == math.MaxInt64 })
}

// dropPending is sweepPending for any choice of messages (DeleteChannel's
// on a full disk).
func (db *DB) dropPending(drop func(*pmsg) bool) (removed int) {
	db.pend.mu.Lock()
	var empty []*group
	for _, g := range db.pend.groups[:len(db.pend.groups)-1] {
		var expired []*pmsg
		for _, m := range g.byID {
			if drop(m) {
				expired = append(expired, m)
			}
		}
		if len(expired) == 0 {
			continue
		}
		kept := newGroup()
		kept.gen, kept.segPath, kept.replayed, kept.born = g.gen, g.segPath, g.replayed, g.born
		for _, m := range g.byID {
			if !drop(m) {
				kept.add(m, g.born)
			}
		}
		*g = *kept
		removed += len(expired)
		for _, m := range expired {
			db.pend.count--
			db.pend.bytes -= int64(len(m.raw))
		}
		if len(g.byID) == 0 {
			empty = append(empty, g)
		}
	}
	db.pend.cond.Broadcast()
	db.pend.mu.Unlock()
	if len(empty) > 0 {
		// Empty groups apply without writing a message; this drops them
		// and deletes their segments, in order, durably: a Wipe counts
		// on their messages not coming back.
		_ = db.applySealed()
		if err := db.syncRemovals(); err != nil {
			db.log.Warn("dropped WAL segments may be replayed at the next start", "err", err)
		}
	}
	return removed
}

// applyGroup writes a sealed group into bbolt in one transaction, with its
// generation. In a replayed group a message already stored is skipped, so
// replaying a segment that was applied before a crash changes nothing.
// Messages are taken in index order (channel, timestamp, ID): their bodies
// get increasing sequence numbers, appended to the end of bBody, and index
// entries, counters and fingerprints are written in key order, once per
// channel and hour, not per message.
func (db *DB) applyGroup(g *group) error {
	ms := make([]*pmsg, 0, len(g.byID))
	for _, m := range g.byID {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *pmsg) int {
		return cmp.Or(bytes.Compare(a.ch[:], b.ch[:]), cmp.Compare(a.ts, b.ts), bytes.Compare(a.id[:], b.id[:]))
	})
	// Before the commit: a reader that sees the group in bbolt (and so
	// no longer among the pending) must find its IDs in the filter.
	f := db.filter.Load()
	for _, m := range ms {
		f.add(m.id[:])
	}
	return db.classify(db.bolt.Update(func(tx *bolt.Tx) error {
		return safeCall(func(tx *bolt.Tx) error {
			body, ids, idx := tx.Bucket(bBody), tx.Bucket(bIDs), tx.Bucket(bIdx)
			// Bodies are only ever appended: pages filled to the brim
			// are never split again.
			body.FillPercent = 1.0
			added := ms
			if g.replayed {
				added = make([]*pmsg, 0, len(ms))
				for _, m := range ms {
					if ids.Get(m.id[:]) == nil {
						added = append(added, m)
					}
				}
			}
			if len(added) == 0 {
				return tx.Bucket(bInfo).Put(kAppliedGen, binary.BigEndian.AppendUint64(nil, g.gen))
			}
			// One slab for every key and value the transaction writes
			// (bbolt keeps references to them until the commit) rather
			// than three small allocations a message.
			const per = 8 + channel.IDSize + 8 + channel.IDSize + 12
			slab := make([]byte, 0, len(added)*per)
			seqs := make([][]byte, len(added))
			seq := body.Sequence()
			for i, m := range added {
				seq++
				slab = binary.BigEndian.AppendUint64(slab, seq)
				seqs[i] = slab[len(slab)-8:]
				if err := body.Put(seqs[i], m.raw); err != nil {
					return err
				}
			}
			if err := body.SetSequence(seq); err != nil {
				return err
			}
			type fpDelta struct {
				key   []byte
				count int64
				xor   [32]byte
			}
			var (
				fps   []fpDelta // in key order: added is sorted by channel, then time
				chans []chanStats
				chIDs []channel.ID
				tot   totals
			)
			for i, m := range added {
				start := len(slab)
				slab = append(slab, m.ch[:]...)
				slab = binary.BigEndian.AppendUint64(slab, sortable(m.ts))
				slab = append(slab, m.id[:]...)
				key := slab[start:]
				size := uint32(len(m.raw))
				slab = binary.BigEndian.AppendUint32(append(slab, seqs[i]...), size)
				if err := idx.Put(key, slab[len(slab)-12:]); err != nil {
					return err
				}
				if n := len(chIDs); n == 0 || chIDs[n-1] != m.ch {
					chIDs = append(chIDs, m.ch)
					chans = append(chans, chanStats{newest: m.ts})
				}
				cs := &chans[len(chans)-1]
				cs.count++
				cs.bytes += uint64(size)
				cs.newest = max(cs.newest, m.ts)
				hour := floorDiv(m.ts, hourMs)
				if n := len(fps); n == 0 || !bytes.Equal(fps[n-1].key[:channel.IDSize], m.ch[:]) ||
					unsortable(binary.BigEndian.Uint64(fps[n-1].key[channel.IDSize:])) != hour {
					fps = append(fps, fpDelta{key: fpKey(m.ch, hour)})
				}
				d := &fps[len(fps)-1]
				d.count++
				for j := range d.xor {
					d.xor[j] ^= m.id[j]
				}
				tot.count++
				tot.bytes += uint64(size)
			}
			order := make([]int, len(added))
			for i := range order {
				order[i] = i
			}
			slices.SortFunc(order, func(a, b int) int { return bytes.Compare(added[a].id[:], added[b].id[:]) })
			for _, i := range order {
				if err := ids.Put(added[i].id[:], seqs[i]); err != nil {
					return err
				}
			}
			fpb := tx.Bucket(bFP)
			for _, d := range fps {
				count, xor := d.count, d.xor
				if v := fpb.Get(d.key); len(v) == 40 {
					count += int64(binary.BigEndian.Uint64(v))
					for i := range xor {
						xor[i] ^= v[8+i]
					}
				}
				v := append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(count)), xor[:]...)
				if err := fpb.Put(d.key, v); err != nil {
					return err
				}
			}
			cb := tx.Bucket(bChans)
			for i, ch := range chIDs {
				d := chans[i]
				cs := getChanStats(cb, ch)
				cs.count += d.count
				cs.bytes += d.bytes
				cs.newest = max(cs.newest, d.newest)
				if err := putChanStats(cb, ch, cs); err != nil {
					return err
				}
			}
			t := getTotals(tx)
			if err := putTotals(tx, totals{t.count + tot.count, t.bytes + tot.bytes}); err != nil {
				return err
			}
			return tx.Bucket(bInfo).Put(kAppliedGen, binary.BigEndian.AppendUint64(nil, g.gen))
		}, tx)
	}))
}

// walFile is a segment read at Open.
type walFile struct {
	path string
	seq  uint64
	data []byte
	scan segmentScan
}

// loadWAL reads and checks every segment a crash left behind, before
// anything changes: damage followed by an acknowledged record (in the same
// segment, or any damage in a segment that has a successor) is ErrCorrupt
// with every file left untouched.
func loadWAL(dbPath string) ([]walFile, error) {
	seqs, err := listSegments(dbPath)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: list WAL segments: %w", dbPath, err)
	}
	var segs []walFile
	for _, seq := range seqs {
		p := segmentPath(dbPath, seq)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: read WAL segment: %w", dbPath, err)
		}
		segs = append(segs, walFile{p, seq, data, scanSegment(data)})
	}
	// A torn tail is possible only in the segment Puts were appended to
	// at the crash: the last one holding records (the applier may have
	// made the next, still empty, one already). Puts move to a new
	// segment only after a batch is synced, so damage with records in a
	// later segment is damage to acknowledged records.
	later := false
	for i := len(segs) - 1; i >= 0; i-- {
		s := &segs[i]
		if s.scan.damage != nil && (later || s.scan.laterBatch >= 0) {
			return nil, walCorruptError(s.path, s.scan.damage)
		}
		// Its magic was synced before any later segment existed.
		if s.scan.unwritten && later {
			return nil, walCorruptError(s.path, errors.New("its header is lost, and later segments hold records"))
		}
		for _, rec := range s.scan.records {
			if _, err := channel.UnmarshalEnvelope(rec); err != nil {
				return nil, walCorruptError(s.path, fmt.Errorf("a record with a valid checksum is not an envelope: %w", err))
			}
		}
		later = later || len(s.scan.records) > 0
	}
	return segs, nil
}

// replay takes the segments loadWAL checked: a torn tail (a batch whose
// write a crash cut short, never acknowledged) is truncated with a
// warning, the records become sealed groups, oldest first, and are
// applied to bbolt, skipping what is already stored. A full disk leaves
// them pending for the applier.
func (db *DB) replay(segs []walFile) error {
	if len(segs) == 0 {
		return nil
	}
	db.nextSeq = segs[len(segs)-1].seq + 1
	for _, l := range segs {
		if l.scan.unwritten {
			// A zero-length file is what a crash right after the create
			// leaves; not worth a warning, but removed all the same.
			if len(l.data) > 0 {
				db.log.Warn("write-ahead log segment whose creation a crash cut short (its header never reached the disk, nothing in it was acknowledged); removing it",
					"file", l.path, "bytes_dropped", len(l.data))
			}
			if err := truncateFile(l.path, 0); err != nil {
				return db.classify(fmt.Errorf("remove unwritten WAL segment %s: %w", l.path, err))
			}
			continue
		}
		if l.scan.damage == nil {
			continue
		}
		dropped := len(l.data) - l.scan.good
		db.log.Warn("write-ahead log ends in a torn record from a crash; dropping it (it was never acknowledged)",
			"file", l.path, "bytes_dropped", dropped, "damage", l.scan.damage)
		if err := truncateFile(l.path, int64(l.scan.good)); err != nil {
			return db.classify(fmt.Errorf("truncate torn WAL tail of %s: %w", l.path, err))
		}
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bIDs)
		seen := map[channel.MessageID]bool{}
		for _, l := range segs {
			g := newGroup()
			g.segPath = l.path
			g.replayed = true
			g.gen = db.nextGen
			db.nextGen++
			for _, rec := range l.scan.records {
				id := channel.MessageID(sha256.Sum256(rec))
				if seen[id] || ids.Get(id[:]) != nil {
					continue
				}
				seen[id] = true
				e, _ := channel.UnmarshalEnvelope(rec) // checked by loadWAL
				g.add(&pmsg{id: id, ch: e.Channel, ts: e.Timestamp, raw: bytes.Clone(rec)}, time.Now())
			}
			db.pend.groups = append(db.pend.groups, g)
			db.pend.count += len(g.byID)
			db.pend.bytes += int64(g.tot.bytes)
		}
		return nil
	})
	if err != nil {
		return db.classify(err)
	}
	db.pend.groups = append(db.pend.groups, newGroup()) // the open group
	db.log.Info("replaying the write-ahead log", "segments", len(segs), "messages", db.pend.count)
	if err := db.applySealed(); err != nil {
		if !errors.Is(err, ErrDiskFull) {
			return err
		}
		db.log.Warn("disk full: the write-ahead log stays pending and is applied once there is room", "err", err)
	}
	if err := db.syncRemovals(); err != nil {
		db.log.Warn("replayed segments may be replayed again (harmlessly) at the next start", "err", err)
	}
	return nil
}

func truncateFile(path string, size int64) error {
	if size == 0 {
		return os.Remove(path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return fdatasync(f)
}

func walCorruptError(path string, cause error) error {
	return fmt.Errorf("%w: write-ahead log %s is damaged before records that were acknowledged (%v). "+
		"Every file was left untouched: stop homenode and restore the data directory from a backup, or move %s aside "+
		"and start again, losing the messages in it that were not yet in the database", ErrCorrupt, path, cause, path)
}
