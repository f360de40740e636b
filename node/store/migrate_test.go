package store

import (
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// writeV1 writes a store of schema version 1 holding m, with the layout
// code of that version: bodies in "msgs" under their ID, index values of
// the size alone. It also keeps a sync state and a Meta record.
func writeV1(t *testing.T, path string, m model) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range v1Buckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bInfo).Put(kSchema, binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		var tot totals
		for _, e := range m {
			raw, _ := e.MarshalBinary()
			id := e.ID()
			if err := tx.Bucket(bMsgsV1).Put(id[:], raw); err != nil {
				return err
			}
			size := binary.BigEndian.AppendUint32(nil, uint32(len(raw)))
			if err := tx.Bucket(bIdx).Put(idxKey(e.Channel, e.Timestamp, id), size); err != nil {
				return err
			}
			if err := addToFingerprint(tx.Bucket(bFP), e.Channel, e.Timestamp, id[:], 1); err != nil {
				return err
			}
			cs := getChanStats(tx.Bucket(bChans), e.Channel)
			if cs.count == 0 {
				cs.newest = e.Timestamp
			}
			cs.count++
			cs.bytes += uint64(len(raw))
			cs.newest = max(cs.newest, e.Timestamp)
			if err := putChanStats(tx.Bucket(bChans), e.Channel, cs); err != nil {
				return err
			}
			tot.count++
			tot.bytes += uint64(len(raw))
		}
		if err := putTotals(tx, tot); err != nil {
			return err
		}
		k, _ := syncKey("peer", newChannel())
		if err := tx.Bucket(bSync).Put(k, binary.BigEndian.AppendUint64(nil, math.MaxInt64/2)); err != nil {
			return err
		}
		reg, err := tx.Bucket(bMeta).CreateBucket([]byte("reg"))
		if err != nil {
			return err
		}
		return reg.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// schemaOf reads a closed store file's schema record and whether it is
// mid-migration.
func schemaOf(t *testing.T, path string) (ver uint32, migrating, hasV1 bool) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.View(func(tx *bolt.Tx) error {
		ver = binary.BigEndian.Uint32(tx.Bucket(bInfo).Get(kSchema))
		migrating = tx.Bucket(bInfo).Get(kMigrating) != nil
		hasV1 = tx.Bucket(bMsgsV1) != nil
		return nil
	})
	return ver, migrating, hasV1
}

// TestMigrateV1: a version 1 file, whole, interrupted mid-migration, or
// with a write-ahead log beside it, opens as version 2 with every message,
// header, fingerprint, counter, sync state and Meta record as before, and
// takes new Puts and sweeps afterwards.
func TestMigrateV1(t *testing.T) {
	old := migrateBatch
	migrateBatch = 37 // many steps, one ending exactly at the last entry below
	t.Cleanup(func() { migrateBatch = old })
	a, b := newChannel(), newChannel()
	var m model
	for i := range 37 * 8 {
		ts := int64(i)*hour/37 - 3*hour
		m = append(m, envelope(a, ts, i%50))
		if i%3 == 0 {
			m = append(m, envelope(b, ts, 10))
		}
	}
	tests := []struct {
		name  string
		v1    model // in the version 1 file
		wal   model // in a WAL segment the version 1 homenode left behind
		steps int   // migration steps run, then "crash", before Open
	}{
		{"empty", nil, nil, 0},
		{"whole", m, nil, 0},
		{"one batch exactly", m[:37], nil, 0},
		{"interrupted", m, nil, 3},
		{"interrupted before the last batch", m, nil, (len(m)+36)/37 - 1},
		{"with a write-ahead log", m[:200], m[150:], 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v1.db")
			writeV1(t, path, tc.v1)
			if len(tc.wal) > 0 {
				data, _ := segmentBytes(tc.wal)
				writeFile(t, segmentPath(path, 1), data)
			}
			if tc.steps > 0 {
				bdb, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				half := &DB{bolt: bdb, path: path, log: quietLog}
				for range tc.steps {
					if _, _, err := half.migrateStep(migrateBatch); err != nil {
						t.Fatal(err)
					}
				}
				bdb.Close()
				// An older homenode must refuse the half-migrated file.
				if ver, migrating, _ := schemaOf(t, path); ver != schemaVersion || !migrating {
					t.Fatalf("after %d steps: schema %d, migrating %v", tc.steps, ver, migrating)
				}
			}
			want := append(model{}, tc.v1...)
			seen := map[channel.MessageID]bool{}
			for _, e := range want {
				seen[e.ID()] = true
			}
			for _, e := range tc.wal {
				if !seen[e.ID()] {
					want = append(want, e)
				}
			}
			var progress []int
			db := openAt(t, path, Options{Retention: 1 << 62, MigrateProgress: func(moved int) { progress = append(progress, moved) }})
			// Progress is told after the first batch Open moved (then at
			// most once a second), and only when there was one to move.
			left := max(0, len(tc.v1)-tc.steps*migrateBatch)
			switch {
			case left == 0 && len(progress) > 0:
				t.Errorf("progress %v with nothing to migrate", progress)
			case left > 0 && (len(progress) == 0 || progress[0] != min(left, migrateBatch)):
				t.Errorf("progress %v, want a first report of %d", progress, min(left, migrateBatch))
			case !slices.IsSorted(progress) || len(progress) > 0 && progress[len(progress)-1] > left:
				t.Errorf("progress %v not rising to at most %d", progress, left)
			}
			first := collectReads(t, db, want, a, b)
			if first.stats.Messages != len(want) {
				t.Fatalf("Stats: %d messages, want %d", first.stats.Messages, len(want))
			}
			if err := db.Check(); err != nil {
				t.Fatal(err)
			}
			if s, err := db.SyncState("peer", newChannel()); err != nil || s != 0 {
				t.Fatalf("SyncState of an unknown channel = %d, %v", s, err)
			}
			if v, err := db.Meta("reg").Get([]byte("k")); err != nil || string(v) != "v" {
				t.Fatalf("Meta record after migration = %q, %v", v, err)
			}
			// The migrated store takes new messages and reopens the same.
			more := model{envelope(a, 5*hour+1, 30), envelope(b, -hour, 5)}
			putAll(t, db, more)
			want = append(want, more...)
			before := collectReads(t, db, want, a, b)
			db.Close()
			if ver, migrating, hasV1 := schemaOf(t, path); ver != schemaVersion || migrating || hasV1 {
				t.Fatalf("after Open: schema %d, migrating %v, msgs bucket left %v", ver, migrating, hasV1)
			}
			db = openAt(t, path, Options{Retention: 1 << 62})
			if after := collectReads(t, db, want, a, b); !equalReads(before, after) {
				t.Fatal("reads changed across a reopen")
			}
		})
	}
}

// TestMigrateDamage: an index entry without its body is damage the
// migration stops at with ErrCorrupt; a body without an index entry (which
// version 1 never listed in Headers or counted) is dropped.
func TestMigrateDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx, e *channel.Envelope) error
		want   string // in the Open error; "" for success
	}{
		{"index entry without body", func(tx *bolt.Tx, e *channel.Envelope) error {
			id := e.ID()
			return tx.Bucket(bMsgsV1).Delete(id[:])
		}, "no body"},
		{"body without index entry", func(tx *bolt.Tx, e *channel.Envelope) error {
			return tx.Bucket(bIdx).Delete(idxKey(e.Channel, e.Timestamp, e.ID()))
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v1.db")
			ch := newChannel()
			e, kept := envelope(ch, 1000, 10), envelope(ch, 2000, 10)
			writeV1(t, path, model{e, kept})
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error { return tc.damage(tx, e) }); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
			db, err := Open(path, Options{Logger: quietLog})
			if tc.want != "" {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Open: %v; want ErrCorrupt about %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if ok, _ := db.Has(e.ID()); ok {
				t.Fatal("the unindexed body is still stored")
			}
			if raw, err := db.GetRaw(kept.ID()); err != nil || len(raw) != kept.Size() {
				t.Fatalf("GetRaw(kept) = %d bytes, %v", len(raw), err)
			}
			if err := db.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
