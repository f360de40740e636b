package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// sweepChunk bounds the deletions of one transaction, so a large sweep
// neither holds a huge transaction in memory nor stalls writers for long.
var sweepChunk = 2048

// cutoff is the oldest timestamp (ms) still kept.
func (db *DB) cutoff() int64 {
	return db.opt.Now().UnixMilli() - db.opt.Retention.Milliseconds()
}

// Sweep deletes messages whose timestamp is older than Retention before
// Now, and sync state older than that, and returns how many messages it
// removed. Each chunk is durable on its own: an interrupted sweep loses
// nothing but progress. Messages acknowledged before the call are swept
// too; one acknowledged during it may wait for the next sweep.
func (db *DB) Sweep() (removed int, err error) {
	if db.opt.ClockTrusted != nil && !db.opt.ClockTrusted() {
		return 0, ErrClockUntrusted
	}
	defer db.quotaChanged()
	// Apply the write-ahead log first, so messages acknowledged before the
	// sweep are swept like the others. On a full disk, where it cannot be
	// applied, expire its messages in memory instead and sweep anyway:
	// the space that frees is what the applier needs to make progress.
	cutoff := db.cutoff()
	err = db.runJob(func(applyErr error) error {
		if errors.Is(applyErr, ErrDiskFull) {
			removed = db.sweepPending(cutoff)
			return nil
		}
		return applyErr
	})
	if err != nil {
		return 0, err
	}
	for {
		n, more, syncRemoved, err := db.sweepChunk(cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
		if !more {
			if removed > 0 || syncRemoved > 0 {
				db.log.Info("retention sweep", "messages_removed", removed, "sync_states_removed", syncRemoved,
					"cutoff", time.UnixMilli(cutoff).UTC())
			}
			return removed, nil
		}
	}
}

type victim struct {
	ch   channel.ID
	ts   int64
	id   []byte
	key  []byte
	seq  []byte
	size uint64
}

func (db *DB) sweepChunk(cutoff int64) (removed int, more bool, syncRemoved int, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		removed, more, syncRemoved = 0, false, 0
		var vs []victim
		cc := tx.Bucket(bChans).Cursor()
		for k, _ := cc.First(); k != nil && !more; k, _ = cc.Next() {
			if len(k) != channel.IDSize {
				continue
			}
			var ch channel.ID
			copy(ch[:], k)
			scanIdx(tx, ch, math.MinInt64, cutoff, func(ts int64, id, val []byte) bool {
				if len(vs) >= sweepChunk {
					more = true
					return false
				}
				seq, size, _ := parseIdxValue(val)
				v := victim{ch: ch, ts: ts, id: append([]byte(nil), id...), key: idxKey(ch, ts, channel.MessageID(id)),
					seq: seqKey(seq), size: uint64(size)}
				vs = append(vs, v)
				return true
			})
		}
		// Delete after scanning: bbolt cursors may skip keys when the
		// bucket changes under them.
		if err := deleteVictims(tx, vs); err != nil {
			return err
		}
		removed = len(vs)
		if more {
			return nil
		}
		var old [][]byte
		sb := tx.Bucket(bSync)
		_ = sb.ForEach(func(k, v []byte) error {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range old {
			if err := sb.Delete(k); err != nil {
				return err
			}
		}
		syncRemoved = len(old)
		return nil
	})
	return removed, more, syncRemoved, err
}

// deleteVictims deletes the messages vs and updates the counters, the
// fingerprints and the totals.
func deleteVictims(tx *bolt.Tx, vs []victim) error {
	body, ids, idx, fp, chans := tx.Bucket(bBody), tx.Bucket(bIDs), tx.Bucket(bIdx), tx.Bucket(bFP), tx.Bucket(bChans)
	stats := map[channel.ID]chanStats{}
	tot := getTotals(tx)
	for _, v := range vs {
		if err := body.Delete(v.seq); err != nil {
			return err
		}
		if err := ids.Delete(v.id); err != nil {
			return err
		}
		if err := idx.Delete(v.key); err != nil {
			return err
		}
		if err := addToFingerprint(fp, v.ch, v.ts, v.id, -1); err != nil {
			return err
		}
		cs, ok := stats[v.ch]
		if !ok {
			cs = getChanStats(chans, v.ch)
		}
		cs.count--
		cs.bytes -= v.size
		stats[v.ch] = cs
		tot.count--
		tot.bytes -= v.size
	}
	for ch, cs := range stats {
		if err := putChanStats(chans, ch, cs); err != nil {
			return err
		}
	}
	if len(vs) > 0 {
		return putTotals(tx, tot)
	}
	return nil
}

// RunSweeper sweeps now and then every interval until ctx is done or the
// store is closed. It blocks: run it in its own goroutine. Errors are
// logged and the next tick tries again.
func (db *DB) RunSweeper(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := db.Sweep(); err != nil {
			switch {
			case errors.Is(err, ErrClosed):
				return
			case errors.Is(err, ErrClockUntrusted):
				db.log.Info("retention sweep postponed until the clock is synchronised")
			default:
				db.log.Error("retention sweep failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-db.stop:
			return
		case <-t.C:
		}
	}
}
