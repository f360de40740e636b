package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// Schema version 1 kept each body in bucket "msgs" under its message ID
// and an index value of the size alone (uint32). Open migrates such a
// file to version 2 in place, walking the index in batches of
// migrateBatch messages, each its own durable transaction: memory stays
// bounded, the bodies freed by one batch hold the next one's (the file
// barely grows), and a crash loses only the batch in flight. The first
// batch sets the schema to 2 with kMigrating, so an older homenode
// refuses the half-migrated file rather than misread it.
var (
	bMsgsV1 = []byte("msgs") // schema 1: id -> canonical envelope bytes
	// kMigrating, in bInfo while a migration runs: the last index key
	// migrated (empty before the first).
	kMigrating = []byte("migrating")

	v1Buckets        = [][]byte{bInfo, bMsgsV1, bIdx, bChans, bFP, bSync, bMeta}
	migratingBuckets = append(slices.Clone(v1Buckets), bBody, bIDs)
)

// migrateBatch bounds the messages moved by one migration transaction; a
// variable so tests can make migrations take many steps.
var migrateBatch = 2048

// migrate brings a version 1 file, or one whose migration a crash
// interrupted, to version 2; on a version 2 file it does nothing.
func (db *DB) migrate() error {
	moved := 0
	for {
		n, done, err := db.migrateStep(migrateBatch)
		if err != nil {
			return fmt.Errorf("store: open %s: migrating to schema version %d (progress is kept; the next start resumes): %w",
				db.path, schemaVersion, err)
		}
		moved += n
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
		if ver == schemaVersion && info.Get(kMigrating) == nil {
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
		from := bytes.Clone(info.Get(kMigrating))
		msgs, body, ids, idx := tx.Bucket(bMsgsV1), tx.Bucket(bBody), tx.Bucket(bIDs), tx.Bucket(bIdx)
		body.FillPercent = 1.0
		// Collect first, then change: bbolt cursors may skip keys when the
		// bucket changes under them.
		type entry struct{ key, id, raw []byte }
		var es []entry
		c := idx.Cursor()
		k, v := c.Seek(from)
		if k != nil && len(from) > 0 && bytes.Equal(k, from) {
			k, v = c.Next()
		}
		for ; k != nil && len(es) < limit; k, v = c.Next() {
			if len(v) != 4 || len(k) != channel.IDSize+8+channel.IDSize {
				continue // not a version 1 entry: nothing to move
			}
			key := bytes.Clone(k)
			id := key[channel.IDSize+8:]
			raw := msgs.Get(id)
			if raw == nil {
				return corruptError(db.path, fmt.Errorf("index entry of message %x has no body", id))
			}
			es = append(es, entry{key: key, id: id, raw: raw})
		}
		last := k == nil
		var lastKey []byte
		if len(es) > 0 {
			lastKey = es[len(es)-1].key
		}
		seq := body.Sequence()
		for i := range es {
			e := &es[i]
			seq++
			if err := body.Put(seqKey(seq), e.raw); err != nil {
				return err
			}
			if err := idx.Put(e.key, idxValue(seq, uint32(len(e.raw)))); err != nil {
				return err
			}
			e.raw = seqKey(seq) // what ids gets
		}
		if err := body.SetSequence(seq); err != nil {
			return err
		}
		slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.id, b.id) })
		for _, e := range es {
			if err := ids.Put(e.id, e.raw); err != nil {
				return err
			}
			if err := msgs.Delete(e.id); err != nil {
				return err
			}
		}
		moved = len(es)
		if !last {
			return info.Put(kMigrating, lastKey)
		}
		// Every indexed body has moved; whatever is left in msgs was
		// never indexed (unreachable in version 1 too).
		if left := msgs.Stats().KeyN; left > 0 {
			db.log.Warn("dropping message bodies that had no index entry", "count", left)
		}
		if err := tx.DeleteBucket(bMsgsV1); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		done = true
		return info.Delete(kMigrating)
	})
	return moved, done, err
}
