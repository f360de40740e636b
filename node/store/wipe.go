package store

import (
	"errors"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Wipe deletes every message, its indexes and counters, all sync state,
// and every Meta bucket except those named in keep: a factory reset. It is
// one durable transaction, so a power cut leaves either everything or
// nothing wiped, and it may safely run twice. The file keeps its size;
// bbolt reuses the freed pages.
func (db *DB) Wipe(keep ...string) error {
	defer db.quotaChanged()
	// Apply the write-ahead log first (its applied segments are then
	// deleted durably), so no message acknowledged before the wipe
	// survives it, here or in a replay after a crash. On a full disk,
	// where it cannot be applied, drop it instead: a power cut between
	// that and the wipe below leaves the wipe half done, and running it
	// again finishes it.
	err := db.runJob(func(applyErr error) error {
		if errors.Is(applyErr, ErrDiskFull) {
			db.sweepPending(math.MaxInt64)
			return nil
		}
		return applyErr
	})
	if err != nil {
		return fmt.Errorf("store: wipe %s: %w", db.path, err)
	}
	err = db.write(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bBody, bIDs, bIdx, bChans, bFP, bSync} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := putTotals(tx, totals{}); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		var drop [][]byte
		err := meta.ForEachBucket(func(k []byte) error {
			if !slices.Contains(keep, string(k)) {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := meta.DeleteBucket(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: wipe %s: %w", db.path, err)
	}
	db.log.Warn("store wiped (factory reset)", "kept", keep)
	return nil
}
