package store

import (
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestSegmentRemovalSyncedBeforeDeletes: applied segments are removed
// without a directory sync (it stalled the WAL's fdatasync), so whatever
// deletes messages, or ends the store, must sync the removals first: a
// segment whose removal a power cut undid would replay deleted messages.
func TestSegmentRemovalSyncedBeforeDeletes(t *testing.T) {
	cases := []struct {
		name string
		op   func(*DB) error
	}{
		{"Sweep", func(db *DB) error { _, err := db.Sweep(); return err }},
		{"Wipe", func(db *DB) error { return db.Wipe() }},
		{"flush", func(db *DB) error { return db.flush() }},
		{"Close", func(db *DB) error { return db.Close() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			holdWAL(t) // only the operation applies, so it removes a segment itself
			clk := testkit.NewClock(time.UnixMilli(100 * 24 * hour))
			db := openTemp(t, Options{Now: clk.Now})
			putAll(t, db, []*channel.Envelope{envelope(newChannel(), clk.Now().UnixMilli(), 10)})
			if err := c.op(db); err != nil {
				t.Fatal(err)
			}
			// The operation's reply (or Close's wait for the applier)
			// orders this read after the applier's last write.
			if db.removedUnsynced != "" {
				t.Fatalf("%s returned with the removal of %s not synced", c.name, db.removedUnsynced)
			}
		})
	}
}
