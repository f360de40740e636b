package store

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// setSchema rewrites a closed file's schema record as a newer homenode
// would leave it: schema ver, the reader record when reader > 0, and a
// bucket this version does not know.
func setSchema(t *testing.T, path string, ver, reader uint32) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		info := tx.Bucket(bInfo)
		if err := info.Put(kSchema, binary.BigEndian.AppendUint32(nil, ver)); err != nil {
			return err
		}
		if reader > 0 {
			if err := info.Put(kReader, binary.BigEndian.AppendUint32(nil, reader)); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucketIfNotExists([]byte("future"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasAll(t *testing.T, db *DB, m model) {
	t.Helper()
	for i, e := range m {
		got, err := db.Get(e.ID())
		if err != nil {
			t.Fatalf("message %d of %d (%s): %v", i, len(m), e.ID(), err)
		}
		if got.ID() != e.ID() {
			t.Fatalf("message %s read back as %s", e.ID(), got.ID())
		}
	}
	if st, err := db.Stats(); err != nil || st.Messages != len(m) {
		t.Fatalf("Stats %+v, %v; want %d messages", st, err, len(m))
	}
}

// TestMigrationKeepsSnapshot: with RollbackSnapshot, migrating a schema 1
// file first keeps a copy of it, and its write-ahead log, as they were;
// DropRollback removes them. Without the option nothing is kept.
func TestMigrationKeepsSnapshot(t *testing.T) {
	a := newChannel()
	var m model
	for i := range 50 {
		m = append(m, envelope(a, int64(i)*hour/50, i))
	}
	for _, keep := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "messages.db")
		writeV1(t, path, m[:40])
		seg, _ := segmentBytes(m[30:])
		writeFile(t, segmentPath(path, 1), seg)
		orig, _ := os.ReadFile(path)
		db := openAt(t, path, Options{Retention: 1 << 62, RollbackSnapshot: keep})
		hasAll(t, db, m)
		db.Close()
		snap := filepath.Join(snapshotDir(path, 1), "messages.db")
		_, err := os.Stat(snap)
		if !keep {
			if err == nil {
				t.Fatal("a snapshot was kept without RollbackSnapshot")
			}
			continue
		}
		if err != nil {
			t.Fatalf("no snapshot: %v", err)
		}
		if ver, _, hasV1 := schemaOf(t, snap); ver != 1 || !hasV1 {
			t.Fatalf("snapshot: schema %d, v1 bucket %v; want the schema 1 file", ver, hasV1)
		}
		if st, _ := os.Stat(snap); st.Size() > int64(len(orig))+64<<10 {
			t.Errorf("snapshot %d bytes for a %d-byte file", st.Size(), len(orig))
		}
		if w, err := os.ReadFile(filepath.Join(snapshotDir(path, 1), filepath.Base(segmentPath(path, 1)))); err != nil || string(w) != string(seg) {
			t.Fatalf("the WAL segment in the snapshot: %v", err)
		}
		if err := DropRollback(path); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(snapshotDir(path, 1)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after DropRollback: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("DropRollback touched the store: %v", err)
		}
	}
}

// TestRollbackRestoresSnapshot plays a firmware rollback: a newer homenode
// (schema+1) took a snapshot, migrated and received more messages; its
// trial failed and this version opens the store again. It gets the file
// as it was before the migration, with every message it held then, and
// the newer file is kept aside; opening again changes nothing more.
func TestRollbackRestoresSnapshot(t *testing.T) {
	a := newChannel()
	before := model{envelope(a, 1, 1), envelope(a, 2, 2), envelope(a, 3, 3)}
	path := filepath.Join(t.TempDir(), "messages.db")
	db := openAt(t, path, Options{Retention: 1 << 62})
	putAll(t, db, before)
	// The newer homenode's migration starts with this very call.
	if err := db.snapshot(schemaVersion); err != nil {
		t.Fatal(err)
	}
	putAll(t, db, model{envelope(a, 4, 4)}) // arrived during the trial
	db.Close()
	setSchema(t, path, schemaVersion+1, 0)

	db = openAt(t, path, Options{Retention: 1 << 62})
	hasAll(t, db, before)
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	later := envelope(a, 5, 5)
	putAll(t, db, model{later})
	db.Close()
	aside := path + rolledBackSuffix + "3"
	if ver, _, _ := schemaOf(t, filepath.Join(aside, "messages.db")); ver != schemaVersion+1 {
		t.Fatalf("the newer file aside has schema %d", ver)
	}
	if _, err := os.Stat(snapshotDir(path, schemaVersion)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the snapshot is still there: %v", err)
	}
	db = openAt(t, path, Options{Retention: 1 << 62})
	hasAll(t, db, append(before, later))
	db.Close()
	if err := DropRollback(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("DropRollback left %s: %v", aside, err)
	}
}

// TestNewerSchemaReadable: a newer file whose reader record says this
// version can read it opens as it is; one that does not, with no
// snapshot, is refused with a clear error and left untouched.
func TestNewerSchemaReadable(t *testing.T) {
	a := newChannel()
	m := model{envelope(a, 1, 1), envelope(a, 2, 2)}
	path := filepath.Join(t.TempDir(), "messages.db")
	db := openAt(t, path, Options{Retention: 1 << 62})
	putAll(t, db, m)
	db.Close()

	setSchema(t, path, schemaVersion+1, schemaVersion)
	db = openAt(t, path, Options{Retention: 1 << 62})
	hasAll(t, db, m)
	db.Close()

	other := filepath.Join(t.TempDir(), "messages.db")
	db = openAt(t, other, Options{Retention: 1 << 62})
	putAll(t, db, m)
	db.Close()
	setSchema(t, other, schemaVersion+1, schemaVersion+1)
	orig, _ := os.ReadFile(other)
	_, err := Open(other, Options{Logger: quietLog})
	if err == nil || !strings.Contains(err.Error(), "schema version 3") {
		t.Fatalf("Open of a newer unreadable file = %v", err)
	}
	if now, _ := os.ReadFile(other); string(now) != string(orig) {
		t.Fatal("the refused file changed")
	}
}
