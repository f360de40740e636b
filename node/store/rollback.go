package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// Store layouts and firmware rollbacks (docs/UPDATES.md).
//
// A firmware update may bring a homenode whose store layout is newer: it
// migrates the file when it first opens it. If the update is then rolled
// back (the new version was not healthy on its trial boot), the older
// version finds a file it cannot read. Two rules keep a rollback from
// leaving the node without a store:
//
//  1. A layout change that older versions can still read (buckets they
//     ignore) records, in the file's "reader" record, the oldest schema
//     that reads it; an older version whose schema is at least that opens
//     the newer file as it is.
//  2. Any other migration, when Options.RollbackSnapshot is set (the
//     appliance sets it on the trial boot of an update), first copies the
//     file as it was, with its write-ahead log, to PATH.rollback-vN. An
//     older version of schema N that finds a newer file it cannot read and
//     that snapshot beside it moves the newer file (and its log) aside to
//     PATH.rolled-back-vM and opens the snapshot. Messages that arrived in
//     between are not in it; sync brings them back from the peers and
//     devices that hold them.
//
// Once the new version is committed, DropRollback deletes the snapshot.

// kReader, in bInfo: the oldest schema version that can read this file.
var kReader = []byte("reader")

const (
	snapshotSuffix   = ".rollback-v"
	rolledBackSuffix = ".rolled-back-v"
)

// ErrNoRoomForSnapshot: a migration that must keep a rollback snapshot
// found too little free space for it, and did not start.
var ErrNoRoomForSnapshot = errors.New("store: not enough free space for the rollback snapshot of a migration")

func snapshotDir(path string, version uint32) string {
	return path + snapshotSuffix + strconv.FormatUint(uint64(version), 10)
}

// snapshot copies the file at schema version ver, and its WAL segments, to
// snapshotDir(path, ver), durably, unless one is already there (a
// migration that a crash interrupted has one from before it began).
func (db *DB) snapshot(ver uint32) error {
	dir := snapshotDir(db.path, ver)
	if _, err := os.Stat(filepath.Join(dir, filepath.Base(db.path))); err == nil {
		return nil
	}
	segs, err := listSegments(db.path)
	if err != nil {
		return err
	}
	need := int64(0)
	if st, err := os.Stat(db.path); err == nil {
		need += st.Size()
	}
	for _, s := range segs {
		if st, err := os.Stat(segmentPath(db.path, s)); err == nil {
			need += st.Size()
		}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(db.path), &sfs); err == nil {
		if free := int64(sfs.Bavail) * int64(sfs.Bsize); free < need+need/10 {
			return fmt.Errorf("%w: %d bytes needed, %d free", ErrNoRoomForSnapshot, need, free)
		}
	}
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(tmp, filepath.Base(db.path)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = db.bolt.View(func(tx *bolt.Tx) error { _, err := tx.WriteTo(f); return err })
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, s := range segs {
		src := segmentPath(db.path, s)
		if err := copySynced(src, filepath.Join(tmp, filepath.Base(src))); err != nil {
			return err
		}
	}
	if err := syncPath(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	if err := syncPath(filepath.Dir(dir)); err != nil {
		return err
	}
	db.log.Info("store: rollback snapshot kept before the migration", "schema", ver, "dir", dir, "bytes", need)
	return nil
}

func copySynced(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// restoreError: the file is of a newer schema this version cannot read,
// and a snapshot of this version's schema is beside it.
type restoreError struct{ newer uint32 }

func (e restoreError) Error() string {
	return fmt.Sprintf("store: schema %d is newer than %d; a rollback snapshot is there", e.newer, schemaVersion)
}

func hasSnapshot(path string) bool {
	_, err := os.Stat(filepath.Join(snapshotDir(path, schemaVersion), filepath.Base(path)))
	return err == nil
}

// newerReadable reports whether a file of schema got (newer than this
// code's) says this code can still read it.
func newerReadable(info *bolt.Bucket) bool {
	v := info.Get(kReader)
	return len(v) == 4 && binary.BigEndian.Uint32(v) <= schemaVersion
}

// restoreSnapshot moves the newer file and its WAL aside to
// PATH.rolled-back-vNEWER and puts the snapshot of this code's schema in
// their place.
func restoreSnapshot(path string, newer uint32) error {
	snap := snapshotDir(path, schemaVersion)
	aside := path + rolledBackSuffix + strconv.FormatUint(uint64(newer), 10)
	if err := os.RemoveAll(aside); err != nil {
		return err
	}
	if err := os.Mkdir(aside, 0o700); err != nil {
		return err
	}
	segs, err := listSegments(path)
	if err != nil {
		return err
	}
	move := []string{path}
	for _, s := range segs {
		move = append(move, segmentPath(path, s))
	}
	for _, p := range move {
		if err := os.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(snap)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(snap, e.Name()), filepath.Join(filepath.Dir(path), e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(snap); err != nil {
		return err
	}
	return syncPath(filepath.Dir(path))
}

// DropRollback deletes the rollback snapshots kept beside the store at
// path, and files a rollback moved aside: once a new version is committed
// the previous one will not run on this store again. It works on a closed
// or an open store.
func DropRollback(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, base+snapshotSuffix) || strings.HasPrefix(n, base+rolledBackSuffix) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
		}
	}
	return errors.Join(errs...)
}
