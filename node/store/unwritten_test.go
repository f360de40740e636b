package store

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestUnwrittenStoreFile: a store file of zeros is one whose creation a
// power cut interrupted; Open starts it afresh, with a warning, and it
// works. Beside a write-ahead log with records the zeros are damage to
// what was acknowledged, and Open refuses, touching nothing.
func TestUnwrittenStoreFile(t *testing.T) {
	for _, size := range []int{100, 4096, 16384, 32768} {
		for _, wal := range []string{"no WAL", "an unwritten WAL segment"} {
			t.Run(fmt.Sprintf("%d zero bytes, %s", size, wal), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "z.db")
				writeFile(t, path, make([]byte, size))
				if wal != "no WAL" {
					writeFile(t, segmentPath(path, 1), make([]byte, len(walMagic)))
				}
				var logs logBuffer
				db, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatalf("Open of a never-written file: %v", err)
				}
				if !strings.Contains(logs.String(), "only zeros") || !strings.Contains(logs.String(), path) {
					t.Fatalf("no warning naming %s:\n%s", path, logs.String())
				}
				e := envelope(newChannel(), 1, 10)
				if _, err := db.Put(e); err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				db = openAt(t, path, Options{})
				if ok, _ := db.Has(e.ID()); !ok {
					t.Fatal("a message stored after the fresh start is gone")
				}
			})
		}
	}
	t.Run("zeros beside acknowledged records", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "z.db")
		writeFile(t, path, make([]byte, 16384))
		seg, _ := segmentBytes([]*channel.Envelope{envelope(newChannel(), 1, 10)})
		writeFile(t, segmentPath(path, 1), seg)
		before := [][32]byte{fileHash(t, path), fileHash(t, segmentPath(path, 1))}
		db, err := Open(path, Options{Logger: quietLog})
		if err == nil {
			db.Close()
			t.Fatal("Open started afresh a file whose WAL holds acknowledged records")
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		if fileHash(t, path) != before[0] || fileHash(t, segmentPath(path, 1)) != before[1] {
			t.Fatal("Open changed the files")
		}
	})
}
