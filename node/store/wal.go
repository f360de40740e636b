package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// The write-ahead log. A Put is durable once its record is in a WAL
// segment and the segment is fdatasync'ed: a sequential append of a few
// pages, where a bbolt commit rewrites scattered leaf pages (message IDs
// are random hashes) and syncs twice. The applier later moves whole
// segments into bbolt in large transactions and deletes them.
//
// A segment file is <db path>.wal.<seq> (decimal seq, increasing): the
// 8-byte magic walMagic, then records:
//
//	[4] big-endian: payload length | walFirst if the record begins a batch
//	[4] big-endian CRC32C (Castagnoli) of the 4 length bytes and the payload
//	[n] payload: the canonical envelope bytes
//
// A batch (one group commit) is one write and one fdatasync. A batch is
// written only after the previous one was synced, so damage followed by a
// valid record that begins a batch is damage to an acknowledged record
// (ErrCorrupt), while damage with no batch start after it is the torn,
// never acknowledged tail of a crash (dropped).
//
// A segment's magic is written and fdatasync'ed, and its directory entry
// synced, before the first record is appended to it. A segment whose
// magic never reached the disk (its bytes all zero, or the magic cut
// short, with nothing but zeros after) is one whose creation a crash
// interrupted: nothing was ever acknowledged from it ("unwritten",
// removed). Anything but zeros after a missing magic is damage.

const (
	walMagic     = "RPWAL\x00\x00\x01"
	walHeader    = 8         // bytes of a record header
	walFirst     = 1 << 31   // length flag: the record begins a batch
	walMaxRecord = 1<<31 - 1 // lengths must leave the flag bit free
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord: the bytes do not start with a whole, valid record.
var errBadRecord = errors.New("short or damaged WAL record")

// appendRecord appends one record holding payload to dst.
func appendRecord(dst, payload []byte, first bool) []byte {
	l := uint32(len(payload))
	if first {
		l |= walFirst
	}
	var h [walHeader]byte
	binary.BigEndian.PutUint32(h[:4], l)
	crc := crc32.Update(crc32.Checksum(h[:4], castagnoli), castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// decodeRecord decodes the record at the start of b: its payload (aliasing
// b), whether it begins a batch and its encoded size. It fails with
// errBadRecord unless b starts with a whole record whose checksum matches
// and whose payload is 1..channel.MaxEnvelopeSize bytes.
func decodeRecord(b []byte) (payload []byte, first bool, n int, err error) {
	if len(b) < walHeader {
		return nil, false, 0, fmt.Errorf("%w: %d bytes left, a header is %d", errBadRecord, len(b), walHeader)
	}
	l := binary.BigEndian.Uint32(b)
	first = l&walFirst != 0
	size := int(l &^ walFirst)
	if size == 0 || size > channel.MaxEnvelopeSize {
		return nil, false, 0, fmt.Errorf("%w: length %d", errBadRecord, size)
	}
	if len(b)-walHeader < size {
		return nil, false, 0, fmt.Errorf("%w: %d of %d payload bytes", errBadRecord, len(b)-walHeader, size)
	}
	payload = b[walHeader : walHeader+size]
	want := binary.BigEndian.Uint32(b[4:])
	if got := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, payload); got != want {
		return nil, false, 0, fmt.Errorf("%w: checksum %08x, want %08x", errBadRecord, got, want)
	}
	return payload, first, walHeader + size, nil
}

// segmentScan is what scanSegment found in a segment's bytes.
type segmentScan struct {
	records [][]byte // payloads, in order, aliasing the scanned bytes
	good    int      // bytes up to the end of the last valid record (or of the magic)
	damage  error    // why scanning stopped before the end; nil if it did not
	// laterBatch is the offset of a valid batch-starting record found
	// after the damage, or -1: such a record means the damage is not a
	// torn tail.
	laterBatch int
	// unwritten: the magic never (wholly) reached the disk and nothing
	// but zeros follows: a segment whose creation a crash cut short. It
	// has no records and no damage.
	unwritten bool
}

// scanSegment decodes a segment file's contents. A file whose magic is
// missing or cut short (a prefix of it, then zeros or the end) and that
// holds nothing but zeros after it is unwritten. Other bytes that do not
// start with the magic are not a segment at all (damage at 0, laterBatch
// 0).
func scanSegment(b []byte) segmentScan {
	s := segmentScan{laterBatch: -1}
	head := b[:min(len(b), len(walMagic))]
	if string(head) != walMagic {
		if tornHeader(head) && allZero(b[len(head):]) {
			s.unwritten = true
		} else {
			s.damage, s.laterBatch = errors.New("not a WAL segment (bad magic)"), 0
		}
		return s
	}
	off := len(walMagic)
	s.good = off
	for off < len(b) {
		payload, _, n, err := decodeRecord(b[off:])
		if err != nil {
			s.damage = fmt.Errorf("at offset %d: %w", off, err)
			break
		}
		s.records = append(s.records, payload)
		off += n
		s.good = off
	}
	if s.damage == nil {
		return s
	}
	if allZero(b[s.good:]) {
		// The unused end of a preallocated segment.
		s.damage = nil
		return s
	}
	for o := s.good + 1; o+walHeader <= len(b); o++ {
		if _, first, _, err := decodeRecord(b[o:]); err == nil && first {
			s.laterBatch = o
			break
		}
	}
	return s
}

// tornHeader reports whether h, the start of a segment, is what a write of
// the magic that stopped part way leaves: a prefix of the magic, then
// zeros (all zeros when none of it arrived).
func tornHeader(h []byte) bool {
	k := 0
	for k < len(h) && h[k] == walMagic[k] {
		k++
	}
	return allZero(h[k:])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// segmentPath names segment seq of the store at dbPath.
func segmentPath(dbPath string, seq uint64) string {
	return fmt.Sprintf("%s.wal.%08d", dbPath, seq)
}

// listSegments returns the sequence numbers of dbPath's segments in order.
func listSegments(dbPath string) ([]uint64, error) {
	dir, base := filepath.Split(dbPath)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	prefix := base + ".wal."
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			continue // not ours (an editor's backup, say): leave it alone
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// segment is the WAL file Puts are appended to.
type segment struct {
	f    *os.File
	path string
	seq  uint64
	size int64 // bytes durably written: where the next batch goes
}

// createSegment makes a new, durable, empty segment: its magic and its
// directory entry are synced before any record depends on them. With
// prealloc > 0 the file is first filled with that many zero bytes: an
// fdatasync of records written over them need not commit a new file size
// to the file system's journal, which halves its latency or better. If
// the zeros do not fit, the segment simply grows as it is written.
func createSegment(dbPath string, seq uint64, prealloc int64) (*segment, error) {
	path := segmentPath(dbPath, seq)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write([]byte(walMagic))
	if err == nil && prealloc > int64(len(walMagic)) {
		zeros := zeroChunk[:]
		for off := int64(len(walMagic)); off < prealloc && err == nil; off += int64(len(zeros)) {
			_, err = f.WriteAt(zeros[:min(int64(len(zeros)), prealloc-off)], off)
		}
		if err != nil {
			err = f.Truncate(int64(len(walMagic)))
		}
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = syncDir(path)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &segment{f: f, path: path, seq: seq, size: int64(len(walMagic))}, nil
}

// zeroChunk is what preallocation writes, shared (only ever read) so a
// new segment every applyAge does not allocate its own.
var zeroChunk [256 << 10]byte

// errWALBroken: an append failed and the segment could not be cut back to
// its last good record, so nothing more may be appended to it.
var errWALBroken = errors.New("the write-ahead log could not be repaired after a failed write; restart homenode")

// append writes one batch and syncs it. On failure the segment is cut back
// to its last synced record, so a later batch never follows garbage; if
// even that fails the returned error wraps errWALBroken.
func (s *segment) append(batch []byte) error {
	_, err := s.f.WriteAt(batch, s.size)
	if err == nil {
		err = fdatasync(s.f)
	}
	if err == nil {
		s.size += int64(len(batch))
		return nil
	}
	if terr := s.f.Truncate(s.size); terr != nil {
		return fmt.Errorf("%w: %v (truncating %s: %v)", errWALBroken, err, s.path, terr)
	}
	return err
}

func (s *segment) close() error { return s.f.Close() }

// syncDir makes a file's creation or removal in its directory durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
