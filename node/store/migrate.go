package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Schema version 1 kept each body in bucket "msgs" under its message ID
// and an index value of the size alone (uint32). Open migrates such a
// file to version 2 in place, moving bodies out of msgs in batches of
// migrateBatch messages, each its own durable transaction: memory stays
// bounded, the pages freed by one batch hold the next one's bodies (the
// file barely grows), and a crash loses only the batch in flight (the
// next start resumes with what is left in msgs). The first batch sets the
// schema to 2 with kMigrating, so an older homenode refuses the
// half-migrated file rather than misread it.
var (
	bMsgsV1 = []byte("msgs") // schema 1: id -> canonical envelope bytes
	// kMigrating, in bInfo (empty value) while a migration runs.
	kMigrating = []byte("migrating")

	v1Buckets        = [][]byte{bInfo, bMsgsV1, bIdx, bChans, bFP, bSync, bMeta}
	migratingBuckets = append(slices.Clone(v1Buckets), bBody, bIDs)
)

// migrateBatch bounds the messages moved by one migration transaction; a
// variable so tests can make migrations take many steps.
var migrateBatch = 2048

// migrateReport is how often a migration calls Options.MigrateProgress.
const migrateReport = time.Second

// migrate brings a version 1 file, or one whose migration a crash
// interrupted, to version 2; on a version 2 file it does nothing.
func (db *DB) migrate() error {
	if db.opt.RollbackSnapshot {
		var ver uint32
		if err := db.bolt.View(func(tx *bolt.Tx) error {
			ver = binary.BigEndian.Uint32(tx.Bucket(bInfo).Get(kSchema))
			return nil
		}); err != nil {
			return err
		}
		if ver < schemaVersion {
			if err := db.snapshot(ver); err != nil {
				return fmt.Errorf("store: open %s: before migrating to schema version %d: %w", db.path, schemaVersion, err)
			}
		}
	}
	moved := 0
	var reported time.Time // zero: the first batch reports at once
	for {
		n, done, err := db.migrateStep(migrateBatch)
		if err != nil {
			return fmt.Errorf("store: open %s: migrating to schema version %d (progress is kept; the next start resumes): %w",
				db.path, schemaVersion, err)
		}
		moved += n
		if db.opt.MigrateProgress != nil && n > 0 && time.Since(reported) >= migrateReport {
			db.opt.MigrateProgress(moved)
			reported = time.Now()
		}
		if done {
			if moved > 0 {
				db.log.Info("store migrated to the new schema", "version", schemaVersion, "messages", moved)
			}
			return nil
		}
		if moved%(50*migrateBatch) < n {
			db.log.Info("migrating the store to the new schema", "version", schemaVersion, "messages_done", moved)
		}
	}
}

// migrateStep moves up to limit messages to the version 2 layout in one
// transaction; done is true once nothing is left.
func (db *DB) migrateStep(limit int) (moved int, done bool, err error) {
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		moved, done = 0, false
		info := tx.Bucket(bInfo)
		ver := binary.BigEndian.Uint32(info.Get(kSchema))
		if ver >= schemaVersion && info.Get(kMigrating) == nil {
			done = true
			return nil
		}
		if ver == 1 {
			for _, name := range [][]byte{bBody, bIDs} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if err := info.Put(kSchema, binary.BigEndian.AppendUint32(nil, schemaVersion)); err != nil {
				return err
			}
			if err := info.Put(kMigrating, []byte{}); err != nil {
				return err
			}
		}
		msgs, body, ids, idx := tx.Bucket(bMsgsV1), tx.Bucket(bBody), tx.Bucket(bIDs), tx.Bucket(bIdx)
		body.FillPercent = 1.0
		// Bodies are taken in ID order from the front of msgs, which each
		// batch empties: its deletions free whole pages, its ids are
		// appended in order, and only the index updates land at random.
		// Collect first, then change: bbolt cursors may skip keys when the
		// bucket changes under them.
		type entry struct{ id, raw, key []byte }
		var es []entry
		c := msgs.Cursor()
		for k, v := c.First(); k != nil && len(es) < limit; k, v = c.Next() {
			e, err := channel.UnmarshalEnvelope(v)
			if err != nil {
				return corruptError(db.path, fmt.Errorf("stored message %x does not decode: %w", k, err))
			}
			id := bytes.Clone(k)
			es = append(es, entry{id: id, raw: v, key: idxKey(e.Channel, e.Timestamp, channel.MessageID(id))})
		}
		seq := body.Sequence()
		dropped := 0
		for _, e := range es {
			if err := msgs.Delete(e.id); err != nil {
				return err
			}
			if len(idx.Get(e.key)) != 4 {
				dropped++ // never indexed: unreachable but by ID in version 1 too
				continue
			}
			seq++
			sk := seqKey(seq)
			if err := body.Put(sk, e.raw); err != nil {
				return err
			}
			if err := ids.Put(e.id, sk); err != nil {
				return err
			}
			if err := idx.Put(e.key, idxValue(seq, uint32(len(e.raw)))); err != nil {
				return err
			}
		}
		if dropped > 0 {
			db.log.Warn("dropping message bodies that had no index entry", "count", dropped)
		}
		if err := body.SetSequence(seq); err != nil {
			return err
		}
		moved = len(es) - dropped
		if len(es) == limit {
			return nil // maybe more
		}
		// Every body has moved: an index entry still of version 1 has
		// none.
		err := idx.ForEach(func(k, v []byte) error {
			if len(v) == 4 {
				return corruptError(db.path, fmt.Errorf("index entry of message %x has no body", k[min(len(k), channel.IDSize+8):]))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bMsgsV1); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		done = true
		return info.Delete(kMigrating)
	})
	return moved, done, err
}
