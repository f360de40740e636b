package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// holdWAL keeps every acknowledged message in the WAL and in memory until
// a flush or Close, so tests can read from the pending table.
func holdWAL(t testing.TB) {
	t.Helper()
	msgs, byts, age := applyMsgs, applyBytes, applyAge
	applyMsgs, applyBytes, applyAge = math.MaxInt32, math.MaxInt32, time.Hour
	t.Cleanup(func() { applyMsgs, applyBytes, applyAge = msgs, byts, age })
}

func pendingCount(db *DB) int {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	return db.pend.count
}

// emptyStore creates a store file with no WAL and returns its path.
func emptyStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// segmentBytes encodes batches of envelopes as a segment file's contents
// and returns where each record starts.
func segmentBytes(batches ...[]*channel.Envelope) (data []byte, starts []int) {
	data = []byte(walMagic)
	for _, batch := range batches {
		for i, e := range batch {
			raw, _ := e.MarshalBinary()
			starts = append(starts, len(data))
			data = appendRecord(data, raw, i == 0)
		}
	}
	return data, starts
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func segmentsOf(t *testing.T, path string) []uint64 {
	t.Helper()
	seqs, err := listSegments(path)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// logBuffer is a slog sink tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

func TestWALRecord(t *testing.T) {
	payload := []byte("an envelope, as far as the log knows")
	rec := appendRecord(nil, payload, true)
	tests := []struct {
		name  string
		b     []byte
		ok    bool
		first bool
	}{
		{"whole", rec, true, true},
		{"not first", appendRecord(nil, payload, false), true, false},
		{"trailing bytes", append(bytes.Clone(rec), 1, 2, 3), true, true},
		{"empty", nil, false, false},
		{"header only", rec[:walHeader], false, false},
		{"one byte short", rec[:len(rec)-1], false, false},
		{"payload bit flipped", func() []byte { b := bytes.Clone(rec); b[walHeader+3] ^= 4; return b }(), false, false},
		{"crc bit flipped", func() []byte { b := bytes.Clone(rec); b[5] ^= 1; return b }(), false, false},
		{"first flag flipped", func() []byte { b := bytes.Clone(rec); b[0] ^= 0x80; return b }(), false, false},
		{"zero length", appendRecord(nil, nil, true), false, false},
		{"too long", append([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, payload...), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, first, n, err := decodeRecord(tc.b)
			if (err == nil) != tc.ok {
				t.Fatalf("decodeRecord: %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, errBadRecord) {
					t.Fatalf("error %v does not wrap errBadRecord", err)
				}
				return
			}
			if !bytes.Equal(got, payload) || first != tc.first || n != len(rec) {
				t.Fatalf("decoded %q first=%v n=%d", got, first, n)
			}
		})
	}
}

// FuzzWALRecord: no input makes the decoders panic; whatever decodes
// re-encodes to the same bytes, and a segment scan never claims more than
// it was given.
func FuzzWALRecord(f *testing.F) {
	e := envelope(newChannel(), 5, 20)
	raw, _ := e.MarshalBinary()
	seg, _ := segmentBytes([]*channel.Envelope{e, envelope(e.Channel, 6, 0)}, []*channel.Envelope{envelope(e.Channel, 7, 3)})
	f.Add(appendRecord(nil, raw, true))
	f.Add(appendRecord(nil, []byte{1}, false))
	f.Add(seg)
	f.Add(seg[:len(seg)-7])
	f.Add([]byte(walMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if payload, first, n, err := decodeRecord(b); err == nil {
			if again := appendRecord(nil, payload, first); !bytes.Equal(again, b[:n]) {
				t.Fatalf("re-encoded record differs")
			}
		}
		s := scanSegment(b)
		if s.good > len(b) {
			t.Fatalf("scan: good %d of %d", s.good, len(b))
		}
		if s.unwritten {
			// Only a header cut short, then zeros: never anything
			// that could have been acknowledged.
			head := b[:min(len(b), len(walMagic))]
			if s.damage != nil || len(s.records) > 0 || s.good != 0 || string(head) == walMagic ||
				!tornHeader(head) || !allZero(b[len(head):]) {
				t.Fatalf("scan: %d bytes unwritten with %d records, good %d, damage %v", len(b), len(s.records), s.good, s.damage)
			}
		} else if len(b) >= len(walMagic) && (s.damage == nil) != allZero(b[s.good:]) {
			t.Fatalf("scan: good %d of %d, damage %v, zero tail %v", s.good, len(b), s.damage, allZero(b[s.good:]))
		}
		whole := len(b) >= len(walMagic) && string(b[:len(walMagic)]) == walMagic
		if whole && s.unwritten || !whole && !s.unwritten && s.damage == nil {
			t.Fatalf("scan: magic whole %v, unwritten %v, damage %v", whole, s.unwritten, s.damage)
		}
		if s.laterBatch >= 0 && s.damage == nil {
			t.Fatal("a later batch without damage")
		}
		total := len(walMagic)
		for _, r := range s.records {
			total += walHeader + len(r)
		}
		if len(s.records) > 0 && total != s.good {
			t.Fatalf("records cover %d bytes, good is %d", total, s.good)
		}
	})
}

// TestWALReplay: a WAL left by a crash is applied at Open, idempotently:
// a message already stored and a duplicate inside the WAL count once.
func TestWALReplay(t *testing.T) {
	path := emptyStore(t)
	ch := newChannel()
	stored := envelope(ch, 10, 30)
	db := openAt(t, path, Options{})
	if _, err := db.Put(stored); err != nil {
		t.Fatal(err)
	}
	db.Close()
	es := []*channel.Envelope{envelope(ch, 11, 40), envelope(ch, 12, 50), envelope(newChannel(), 13, 60)}
	seg1, _ := segmentBytes([]*channel.Envelope{stored, es[0]}, []*channel.Envelope{es[1]})
	seg2, _ := segmentBytes([]*channel.Envelope{es[1], es[2]})
	writeFile(t, segmentPath(path, 3), seg1)
	writeFile(t, segmentPath(path, 4), seg2)

	db = openAt(t, path, Options{})
	if n := pendingCount(db); n != 0 {
		t.Fatalf("%d messages still pending after Open: the WAL was not applied", n)
	}
	if seqs := segmentsOf(t, path); len(seqs) != 0 {
		t.Fatalf("segments %v left after replay", seqs)
	}
	for _, e := range append(es, stored) {
		if ok, err := db.Has(e.ID()); !ok || err != nil {
			t.Fatalf("message at %d missing after replay (%v)", e.Timestamp, err)
		}
	}
	want := int64(0)
	for _, e := range append(es, stored) {
		want += int64(e.Size())
	}
	if s, _ := db.Stats(); s.Messages != 4 || s.Bytes != want || s.Channels != 2 {
		t.Fatalf("Stats after replay = %+v, want 4 messages, %d bytes, 2 channels", s, want)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	// New segments continue after the replayed ones.
	if _, err := db.Put(envelope(ch, 14, 1)); err != nil {
		t.Fatal(err)
	}
	if seqs := segmentsOf(t, path); !slices.Equal(seqs, []uint64{5}) {
		t.Fatalf("segments after a Put: %v, want [5]", seqs)
	}
	db.Close()
	if seqs := segmentsOf(t, path); len(seqs) != 0 {
		t.Fatalf("Close left segments %v", seqs)
	}
}

// TestWALTornTail: a last record cut at every byte offset, or with a bad
// checksum, or damage inside the last batch, is a torn tail: dropped with
// a warning naming the file and the bytes, everything before it kept.
func TestWALTornTail(t *testing.T) {
	ch := newChannel()
	kept := []*channel.Envelope{envelope(ch, 1, 30), envelope(ch, 2, 10), envelope(ch, 3, 20)}
	last := envelope(ch, 4, 0)
	data, starts := segmentBytes(kept[:2], kept[2:], []*channel.Envelope{last})
	lastStart := starts[len(starts)-1]
	type tornCase struct {
		name    string
		data    []byte
		kept    int // how many of kept survive
		dropped int
		next    []byte // a later segment, if any
	}
	var cases []tornCase
	for cut := lastStart + 1; cut < len(data); cut++ {
		cases = append(cases, tornCase{fmt.Sprintf("cut at %d", cut), data[:cut], 3, cut - lastStart, nil})
	}
	for _, off := range []int{0, 4, walHeader, len(data) - lastStart - 1} {
		b := bytes.Clone(data)
		b[lastStart+off] ^= 0x10
		cases = append(cases, tornCase{fmt.Sprintf("bit flipped at +%d", off), b, 3, len(data) - lastStart, nil})
	}
	// A batch whose first record is damaged but whose later records made
	// it to disk (sectors written out of order): still never acknowledged.
	batch, bstarts := segmentBytes(kept[:1], kept[1:]) // the last batch is kept[1], kept[2]
	b := bytes.Clone(batch)
	b[bstarts[1]+walHeader+2] ^= 1
	cases = append(cases, tornCase{"last batch's first record damaged", b, 1, len(b) - bstarts[1], nil})
	// Preallocated segments: a torn record followed by the zeros.
	padded := append(bytes.Clone(data[:lastStart+9]), make([]byte, 5000)...)
	cases = append(cases, tornCase{"cut, then preallocated zeros", padded, 3, 9 + 5000, nil})
	// The applier made the next segment while Puts still went to this one.
	cases = append(cases, tornCase{"cut, next segment empty", data[:lastStart+20], 3, 20, []byte(walMagic)})
	cases = append(cases, tornCase{"cut, next segment preallocated", data[:lastStart+20], 3, 20,
		append([]byte(walMagic), make([]byte, 300)...)})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := emptyStore(t)
			seg := segmentPath(path, 1)
			writeFile(t, seg, tc.data)
			if tc.next != nil {
				writeFile(t, segmentPath(path, 2), tc.next)
			}
			var logs logBuffer
			db, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Open with a torn tail: %v", err)
			}
			defer db.Close()
			for i, e := range kept {
				if ok, _ := db.Has(e.ID()); ok != (i < tc.kept) {
					t.Fatalf("message %d present=%v, want %v", i, ok, i < tc.kept)
				}
			}
			if ok, _ := db.Has(last.ID()); ok {
				t.Fatal("the torn record was stored")
			}
			out := logs.String()
			if !strings.Contains(out, "torn") || !strings.Contains(out, seg) ||
				!strings.Contains(out, fmt.Sprintf("bytes_dropped=%d", tc.dropped)) {
				t.Fatalf("no warning naming %s and %d dropped bytes; log:\n%s", seg, tc.dropped, out)
			}
			if seqs := segmentsOf(t, path); len(seqs) != 0 {
				t.Fatalf("segments %v left after replay", seqs)
			}
			if s, _ := db.Stats(); s.Messages != tc.kept {
				t.Fatalf("Stats = %+v, want %d messages", s, tc.kept)
			}
		})
	}
}

// TestWALUnwrittenSegment: a segment whose creation a power cut
// interrupted (its magic missing or cut short, nothing but zeros after it)
// never held an acknowledged record: Open removes it, with a warning
// naming the file, keeps every record of the segments before it, and new
// segments are numbered after it.
func TestWALUnwrittenSegment(t *testing.T) {
	ch := newChannel()
	kept := []*channel.Envelope{envelope(ch, 1, 30), envelope(ch, 2, 10)}
	before, _ := segmentBytes(kept[:1], kept[1:])
	zeros := func(n int) []byte { return make([]byte, n) }
	cases := []struct {
		name string
		data []byte
		warn bool
	}{
		{"empty file", nil, false},
		{"magic cut short", []byte(walMagic[:3]), true},
		{"size but no data (eight zero bytes)", zeros(len(walMagic)), true},
		{"three zero bytes", zeros(3), true},
		{"magic cut short, then zeros", append([]byte(walMagic[:5]), zeros(3)...), true},
		{"preallocation, magic lost", zeros(64 << 10), true},
		{"preallocation, magic cut short", append([]byte(walMagic[:6]), zeros(5000)...), true},
	}
	for _, tc := range cases {
		for _, after := range []bool{false, true} {
			name := tc.name
			if after {
				name += ", after a segment with records"
			}
			t.Run(name, func(t *testing.T) {
				path := emptyStore(t)
				seq := uint64(1)
				if after {
					writeFile(t, segmentPath(path, 1), before)
					seq = 2
				}
				seg := segmentPath(path, seq)
				writeFile(t, seg, tc.data)
				var logs logBuffer
				db, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatalf("Open with an unwritten segment: %v", err)
				}
				defer db.Close()
				if got := segmentsOf(t, path); len(got) != 0 {
					t.Fatalf("segments %v left after Open", got)
				}
				out := logs.String()
				if strings.Contains(out, "torn") || strings.Contains(out, "damaged") {
					t.Fatalf("an unwritten segment reported as damage:\n%s", out)
				}
				if warned := strings.Contains(out, "creation a crash cut short") && strings.Contains(out, seg) &&
					strings.Contains(out, fmt.Sprintf("bytes_dropped=%d", len(tc.data))); warned != tc.warn {
					t.Fatalf("warning naming %s and its %d bytes: %v, want %v; log:\n%s", seg, len(tc.data), warned, tc.warn, out)
				}
				want := 0
				if after {
					want = len(kept)
				}
				if s, _ := db.Stats(); s.Messages != want {
					t.Fatalf("Stats = %+v, want %d messages", s, want)
				}
				if _, err := db.Put(envelope(ch, 3, 1)); err != nil {
					t.Fatal(err)
				}
				if got := segmentsOf(t, path); !slices.Equal(got, []uint64{seq + 1}) {
					t.Fatalf("segments after a Put: %v, want [%d]", got, seq+1)
				}
			})
		}
	}
}

// TestWALCorrupt: damage followed by acknowledged records is not a torn
// tail: Open refuses with ErrCorrupt, says what to do and changes nothing.
func TestWALCorrupt(t *testing.T) {
	ch := newChannel()
	es := []*channel.Envelope{envelope(ch, 1, 30), envelope(ch, 2, 10), envelope(ch, 3, 20), envelope(ch, 4, 5)}
	batches := [][]*channel.Envelope{es[:1], es[1:2], es[2:3], es[3:]}
	data, starts := segmentBytes(batches...)
	flip := func(b []byte, at int) []byte { b = bytes.Clone(b); b[at] ^= 0x40; return b }
	one, _ := segmentBytes(es[:1])
	tests := []struct {
		name string
		segs [][]byte
	}{
		{"payload damaged mid-file", [][]byte{flip(data, starts[1]+walHeader+9)}},
		{"length damaged mid-file", [][]byte{flip(data, starts[1]+1)}},
		{"bytes lost mid-file", [][]byte{append(bytes.Clone(data[:starts[1]+5]), data[starts[2]:]...)}},
		{"torn tail in an older segment", [][]byte{one[:len(one)-3], one}},
		{"bad magic", [][]byte{append([]byte("NOTAWAL!"), data[8:]...)}},
		// The magic is synced before the first record is appended, so
		// records behind a lost magic were acknowledged.
		{"magic lost before records", [][]byte{append(make([]byte, len(walMagic)), data[8:]...)}},
		{"magic cut short before records", [][]byte{append(append([]byte(walMagic[:4]), 0, 0, 0, 0), data[8:]...)}},
		{"magic lost before garbage", [][]byte{append(make([]byte, 4096), 0xff)}},
		{"unwritten segment before one with records", [][]byte{make([]byte, len(walMagic)), one}},
		{"checksummed garbage", [][]byte{appendRecord([]byte(walMagic), []byte("not an envelope"), true)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := emptyStore(t)
			var files []string
			for i, d := range tc.segs {
				p := segmentPath(path, uint64(i+1))
				writeFile(t, p, d)
				files = append(files, p)
			}
			hashes := func() (hs [][32]byte) {
				for _, p := range append([]string{path}, files...) {
					hs = append(hs, fileHash(t, p))
				}
				return hs
			}
			before := hashes()
			db, err := Open(path, Options{Logger: quietLog})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded over a WAL damaged before acknowledged records")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "move") || !strings.Contains(err.Error(), ".wal.") {
				t.Fatalf("Open: %v; want ErrCorrupt naming the WAL file and what to do", err)
			}
			if !slices.Equal(hashes(), before) {
				t.Fatal("Open changed the files")
			}
		})
	}
}

// TestDuplicateOfPending: a message acknowledged but not yet applied is
// already stored: ErrExists, before and after the apply; quotas count it.
func TestDuplicateOfPending(t *testing.T) {
	holdWAL(t)
	e := envelope(newChannel(), 5, 100)
	db := openTemp(t, Options{MaxChannelBytes: int64(5 * e.Size() / 2)})
	if _, err := db.Put(e); err != nil {
		t.Fatal(err)
	}
	if pendingCount(db) != 1 {
		t.Fatal("the message is not pending: the test proves nothing")
	}
	for _, step := range []string{"pending", "applied"} {
		if _, err := db.Put(e); !errors.Is(err, ErrExists) {
			t.Fatalf("%s: duplicate Put: %v, want ErrExists", step, err)
		}
		if s, _ := db.Stats(); s.Messages != 1 || s.Bytes != int64(e.Size()) {
			t.Fatalf("%s: duplicate changed stats: %+v", step, s)
		}
		if err := db.flush(); err != nil {
			t.Fatal(err)
		}
	}
	// One applied and one pending fill the channel.
	for i := range 2 {
		_, err := db.Put(envelope(e.Channel, 6, 100))
		if want := i == 0; (err == nil) != want {
			t.Fatalf("Put %d: %v, want accepted=%v", i, err, want)
		}
		if i == 0 && pendingCount(db) != 1 {
			t.Fatal("second message not pending")
		}
		if i == 1 && !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("Put over quota with one pending: %v", err)
		}
	}
}

// readAll is every read the node makes of the store, for comparison.
type readAll struct {
	raws     map[channel.MessageID]string
	headers  map[string][]Header
	fps      map[string]Fingerprint
	channels []ChannelStats
	stats    Stats
}

func collectReads(t *testing.T, db *DB, m model, chans ...channel.ID) readAll {
	t.Helper()
	r := readAll{raws: map[channel.MessageID]string{}, headers: map[string][]Header{}, fps: map[string]Fingerprint{}}
	for _, e := range m {
		raw, err := db.GetRaw(e.ID())
		if err != nil {
			t.Fatalf("GetRaw: %v", err)
		}
		if ok, err := db.Has(e.ID()); !ok || err != nil {
			t.Fatalf("Has = %v, %v", ok, err)
		}
		if got, err := db.Get(e.ID()); err != nil || got.ID() != e.ID() {
			t.Fatalf("Get = %v", err)
		}
		r.raws[e.ID()] = string(raw)
	}
	for _, tc := range rangeCases {
		for i, ch := range chans {
			k := fmt.Sprintf("%s/%d", tc.name, i)
			hs, err := db.Headers(ch, tc.from, tc.to, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := m.headers(ch, tc.from, tc.to); !slices.Equal(hs, want) {
				t.Fatalf("Headers %s: %d headers, model %d", k, len(hs), len(want))
			}
			limited, _ := db.Headers(ch, tc.from, tc.to, 3)
			r.headers[k] = hs
			r.headers[k+"/limit"] = limited
			fp, err := db.Fingerprint(ch, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if want := m.fingerprint(ch, tc.from, tc.to); fp != want {
				t.Fatalf("Fingerprint %s = %d, model %d", k, fp.Count, want.Count)
			}
			r.fps[k] = fp
		}
	}
	var err error
	if r.channels, err = db.Channels(); err != nil {
		t.Fatal(err)
	}
	if r.stats, err = db.Stats(); err != nil {
		t.Fatal(err)
	}
	r.stats.FileSize = 0 // the file grows when applied; the contents may not change
	return r
}

func equalReads(a, b readAll) bool {
	if len(a.raws) != len(b.raws) || len(a.headers) != len(b.headers) || len(a.fps) != len(b.fps) {
		return false
	}
	for k, v := range a.raws {
		if b.raws[k] != v {
			return false
		}
	}
	for k, v := range a.headers {
		if !slices.Equal(v, b.headers[k]) {
			return false
		}
	}
	for k, v := range a.fps {
		if b.fps[k] != v {
			return false
		}
	}
	return slices.Equal(a.channels, b.channels) && a.stats == b.stats
}

// TestReadsAcrossApply: every read answers the same whether the messages
// are pending in the WAL, half applied, or all applied to bbolt, and
// agrees with the model.
func TestReadsAcrossApply(t *testing.T) {
	holdWAL(t)
	db := openTemp(t, Options{Retention: 1 << 62})
	a, b := newChannel(), newChannel()
	var m model
	for i := range 300 {
		ts := int64(i)*hour/29 - 3*hour
		if i%10 == 0 && i > 0 {
			ts = m[len(m)-1].Timestamp
		}
		m = append(m, envelope(a, ts, i%40))
		if i%3 == 0 {
			m = append(m, envelope(b, ts, 10))
		}
	}
	m = append(m, envelope(a, math.MinInt64, 1), envelope(a, math.MaxInt64-1, 1))
	half := len(m) / 2
	putAll(t, db, m[:half])
	if err := db.flush(); err != nil {
		t.Fatal(err)
	}
	putAll(t, db, m[half:])
	if n := pendingCount(db); n != len(m)-half {
		t.Fatalf("%d pending, want %d", n, len(m)-half)
	}
	halfApplied := collectReads(t, db, m, a, b)
	if err := db.flush(); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(db); n != 0 {
		t.Fatalf("%d pending after flush", n)
	}
	applied := collectReads(t, db, m, a, b)
	if !equalReads(halfApplied, applied) {
		t.Fatal("reads differ before and after the apply")
	}

	db2 := openTemp(t, Options{Retention: 1 << 62})
	putAll(t, db2, m)
	if n := pendingCount(db2); n != len(m) {
		t.Fatalf("%d pending, want %d", n, len(m))
	}
	if pending := collectReads(t, db2, m, a, b); !equalReads(pending, applied) {
		t.Fatal("reads of an all-pending store differ from an applied one")
	}
	if s := applied.stats; s.Messages != len(m) || s.Channels != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReadsDuringApply: while the applier moves small groups into bbolt
// as fast as it can, no read loses or double-counts a message: every
// count lies between the acknowledgements before and after it.
func TestReadsDuringApply(t *testing.T) {
	msgs, age := applyMsgs, applyAge
	applyMsgs, applyAge = 3, time.Microsecond
	t.Cleanup(func() { applyMsgs, applyAge = msgs, age })
	db := openTemp(t, Options{Retention: 1 << 62})
	ch := newChannel()
	const n = 300
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := db.Put(envelope(ch, int64(i)*hour/10, 20)); err != nil {
				t.Error(err)
				return
			}
			acked.Add(1)
		}
	}()
	reads := 0
	check := func(what string, got int, before int64) {
		if after := acked.Load(); int64(got) < before || int64(got) > after+1 {
			t.Fatalf("%s = %d with %d..%d acknowledged", what, got, before, after)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		before := acked.Load()
		s, err := db.Stats()
		if err != nil {
			t.Fatal(err)
		}
		check("Stats.Messages", s.Messages, before)
		before = acked.Load()
		hs, _ := db.Headers(ch, math.MinInt64, math.MaxInt64, 0)
		check("Headers", len(hs), before)
		before = acked.Load()
		fp, _ := db.Fingerprint(ch, math.MinInt64, math.MaxInt64)
		check("Fingerprint", fp.Count, before)
		before = acked.Load()
		cs, _ := db.Channels()
		got := 0
		if len(cs) == 1 {
			got = cs[0].Messages
		}
		check("Channels", got, before)
		reads++
	}
	if s, _ := db.Stats(); s.Messages != n {
		t.Fatalf("%d messages at the end, want %d", s.Messages, n)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds of reads during %d applies of ~3 messages", reads, n/3)
}

// TestWipeAndSweepApplyFirst: messages acknowledged but pending are wiped
// and swept like applied ones, and a wipe is not undone by a replay.
func TestWipeAndSweepApplyFirst(t *testing.T) {
	holdWAL(t)
	clk := &clock{t: time.UnixMilli(100 * 24 * hour)}
	path := filepath.Join(t.TempDir(), "ws.db")
	db := openAt(t, path, Options{Now: clk.Now})
	old := envelope(newChannel(), 1, 10)
	fresh := envelope(newChannel(), clk.Now().UnixMilli(), 10)
	putAll(t, db, []*channel.Envelope{old, fresh})
	if n, err := db.Sweep(); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v; want the pending expired message removed", n, err)
	}
	if err := db.Wipe(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.Has(fresh.ID()); ok {
		t.Fatal("a pending message survived the wipe")
	}
	if seqs := segmentsOf(t, path); len(seqs) > 1 {
		t.Fatalf("segments %v after the wipe: applied segments must be gone", seqs)
	}
	db.Close()
	db = openAt(t, path, Options{Now: clk.Now})
	if s, _ := db.Stats(); s.Messages != 0 {
		t.Fatalf("%d messages after wipe and reopen", s.Messages)
	}
}

// TestWALPreallocated: a busy segment is followed by a preallocated one;
// its zero tail is the clean end of the log, in replay no damage at all.
func TestWALPreallocated(t *testing.T) {
	holdWAL(t)
	defer func(n int64) { walPreallocMin = n }(walPreallocMin)
	walPreallocMin = 1
	path := filepath.Join(t.TempDir(), "p.db")
	db := openAt(t, path, Options{})
	ch := newChannel()
	if _, err := db.Put(envelope(ch, 1, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := db.flush(); err != nil { // seals: the next segment is preallocated
		t.Fatal(err)
	}
	seqs := segmentsOf(t, path)
	if len(seqs) != 1 {
		t.Fatalf("segments %v, want the one new segment", seqs)
	}
	seg := segmentPath(path, seqs[0])
	if fi, err := os.Stat(seg); err != nil || fi.Size() <= int64(len(walMagic)) {
		t.Fatalf("next segment not preallocated: %v, %v", fi.Size(), err)
	}
	e := envelope(ch, 2, 100)
	if _, err := db.Put(e); err != nil {
		t.Fatal(err)
	}
	// What a crash would leave: records, then zeros.
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if s := scanSegment(data); s.damage != nil || len(s.records) != 1 || s.good == len(data) {
		t.Fatalf("scan of a preallocated segment: %d records, good %d of %d, damage %v", len(s.records), s.good, len(data), s.damage)
	}
	db.Close()
	path2 := emptyStore(t)
	writeFile(t, segmentPath(path2, 1), data)
	var logs logBuffer
	db2, err := Open(path2, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if ok, _ := db2.Has(e.ID()); !ok {
		t.Fatal("record in a preallocated segment not replayed")
	}
	if strings.Contains(logs.String(), "torn") {
		t.Fatalf("zero tail reported as torn:\n%s", logs.String())
	}
}
