package store

import (
	"fmt"
	"log/slog"
	"os"
)

// maxUnwrittenFile bounds the store files checked for having never been
// written: bbolt's first write is its first four pages.
const maxUnwrittenFile = 1 << 20

// clearUnwrittenFile empties a store file that holds nothing but zeros, so
// that bbolt initialises it as a new one. Such a file is what a power cut
// leaves when it interrupts the file's creation (its size reached the disk,
// its first pages did not): bbolt syncs those pages before Open returns,
// and every later commit writes a meta page that is not zero, so nothing
// was ever stored in it. A write-ahead log with records beside it was
// acknowledged after the file was made, so there the zeros are damage:
// the file is left for bbolt to refuse.
func clearUnwrittenFile(path string, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > maxUnwrittenFile {
		return nil // bbolt says what is wrong, if anything
	}
	b, err := os.ReadFile(path)
	if err != nil || !allZero(b) {
		return nil
	}
	seqs, err := listSegments(path)
	if err != nil {
		return nil
	}
	for _, seq := range seqs {
		data, err := os.ReadFile(segmentPath(path, seq))
		if err != nil || len(scanSegment(data).records) > 0 {
			return nil
		}
	}
	log.Warn("store file holds only zeros: a crash cut its creation short and nothing was ever stored in it; starting it afresh",
		"file", path, "bytes", len(b))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: open %s: empty a never-written file: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("store: open %s: empty a never-written file: %w", path, err)
	}
	return f.Sync()
}
