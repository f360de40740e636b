package store

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

func TestPutGet(t *testing.T) {
	db := openTemp(t, Options{})
	ch := newChannel()
	tests := []struct {
		name string
		size int
	}{
		{"empty ciphertext", 0},
		{"small", 100},
		{"largest", channel.MaxCiphertext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := envelope(ch, time.Now().UnixMilli(), tc.size)
			id, err := db.Put(e)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if id != e.ID() {
				t.Fatalf("Put returned %s, envelope ID is %s", id, e.ID())
			}
			want, _ := e.MarshalBinary()
			raw, err := db.GetRaw(id)
			if err != nil || !bytes.Equal(raw, want) {
				t.Fatalf("GetRaw = %d bytes, %v; want the canonical %d bytes", len(raw), err, len(want))
			}
			got, err := db.Get(id)
			if err != nil || got.Timestamp != e.Timestamp || got.Channel != e.Channel ||
				got.Signature != e.Signature || !bytes.Equal(got.Ciphertext, e.Ciphertext) {
				t.Fatalf("Get = %+v, %v; want %+v", got, err, e)
			}
			if ok, err := db.Has(id); !ok || err != nil {
				t.Fatalf("Has = %v, %v; want true", ok, err)
			}
			before, _ := db.Stats()
			if _, err := db.Put(e); !errors.Is(err, ErrExists) {
				t.Fatalf("second Put: %v, want ErrExists", err)
			}
			if after, _ := db.Stats(); after.Messages != before.Messages || after.Bytes != before.Bytes {
				t.Fatalf("duplicate changed stats: %+v -> %+v", before, after)
			}
		})
	}
	var missing channel.MessageID
	if _, err := db.Get(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if ok, err := db.Has(missing); ok || err != nil {
		t.Fatalf("Has missing = %v, %v", ok, err)
	}
}

// TestDuplicatesInOneBatch: concurrent Puts of the same envelope share a
// transaction; exactly one stores it.
func TestDuplicatesInOneBatch(t *testing.T) {
	db := openTemp(t, Options{})
	e := envelope(newChannel(), 1000, 50)
	var wg sync.WaitGroup
	results := make(chan error, 32)
	for range 32 {
		wg.Go(func() { _, err := db.Put(e); results <- err })
	}
	wg.Wait()
	close(results)
	stored := 0
	for err := range results {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrExists):
			t.Fatalf("Put: %v", err)
		}
	}
	s, _ := db.Stats()
	if stored != 1 || s.Messages != 1 || s.Bytes != int64(e.Size()) {
		t.Fatalf("stored %d times, stats %+v; want once, %d bytes", stored, s, e.Size())
	}
}

// model is the plain list the index and fingerprints are checked against.
type model []*channel.Envelope

func (m model) headers(ch channel.ID, from, to int64) []Header {
	var hs []Header
	for _, e := range m {
		if e.Channel == ch && e.Timestamp >= from && e.Timestamp < to {
			hs = append(hs, Header{ID: e.ID(), Channel: ch, Timestamp: e.Timestamp, Size: uint32(e.Size())})
		}
	}
	slices.SortFunc(hs, func(a, b Header) int {
		return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return hs
}

func (m model) fingerprint(ch channel.ID, from, to int64) Fingerprint {
	var f Fingerprint
	for _, h := range m.headers(ch, from, to) {
		f.add(h.ID[:], 1)
	}
	return f
}

const hour = int64(time.Hour / time.Millisecond)

// rangeCases cover hour-aligned, partial, single-hour, empty, negative and
// unbounded ranges.
var rangeCases = []struct {
	name     string
	from, to int64
}{
	{"everything", math.MinInt64, math.MaxInt64},
	{"empty", 5 * hour, 5 * hour},
	{"reversed", 6 * hour, 5 * hour},
	{"whole hours", 2 * hour, 7 * hour},
	{"partial both edges", 2*hour + 17, 7*hour - 3},
	{"inside one hour", 3*hour + 5, 3*hour + 900_000},
	{"one exact hour", 4 * hour, 5 * hour},
	{"across zero", -2*hour + 1, 2*hour - 1},
	{"negative only", math.MinInt64, 0},
	{"from a timestamp", 1*hour + 1234, math.MaxInt64},
	{"past the data", 100 * hour, 200 * hour},
}

func buildIndexed(t testing.TB) (*DB, model, channel.ID, channel.ID) {
	db := openTemp(t, Options{Retention: 1 << 62}) // nothing expires here
	a, b := newChannel(), newChannel()
	var m model
	for i := range 400 {
		ts := int64(i)*hour/37 - 3*hour // ~11 per hour from -3h to +8h
		if i%10 == 0 && i > 0 {
			ts = m[len(m)-1].Timestamp // equal timestamps: order falls to the ID
		}
		if i == 7 {
			ts = 1*hour + 1234 // exactly on a range edge
		}
		m = append(m, envelope(a, ts, i%50))
		if i%3 == 0 {
			m = append(m, envelope(b, ts, 10))
		}
	}
	m = append(m, envelope(a, math.MinInt64, 1), envelope(a, math.MaxInt64-1, 1))
	putAll(t, db, m)
	return db, m, a, b
}

func TestHeaders(t *testing.T) {
	db, m, a, b := buildIndexed(t)
	for _, tc := range rangeCases {
		for _, ch := range []channel.ID{a, b} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := db.Headers(ch, tc.from, tc.to, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := m.headers(ch, tc.from, tc.to)
				if !slices.Equal(got, want) {
					t.Fatalf("Headers(%d, %d) = %d headers, want %d", tc.from, tc.to, len(got), len(want))
				}
				if len(want) > 3 {
					got, _ := db.Headers(ch, tc.from, tc.to, 3)
					if !slices.Equal(got, want[:3]) {
						t.Fatalf("Headers limit 3 = %v, want %v", got, want[:3])
					}
				}
			})
		}
	}
}

func TestFingerprint(t *testing.T) {
	db, m, a, b := buildIndexed(t)
	check := func(t *testing.T, m model) {
		for _, tc := range rangeCases {
			for _, ch := range []channel.ID{a, b} {
				got, err := db.Fingerprint(ch, tc.from, tc.to)
				if err != nil {
					t.Fatal(err)
				}
				if want := m.fingerprint(ch, tc.from, tc.to); got != want {
					t.Errorf("%s: Fingerprint = %d/%x, want %d/%x", tc.name, got.Count, got.XOR[:4], want.Count, want.XOR[:4])
				}
			}
		}
	}
	t.Run("after puts", func(t *testing.T) { check(t, m) })
	t.Run("after sweep", func(t *testing.T) {
		// Sweep the oldest messages out: per-hour fingerprints must
		// forget exactly the deleted IDs, including in a partial hour.
		cut := 2*hour + 500_000
		db.opt.Retention = time.Millisecond
		db.opt.Now = func() time.Time { return time.UnixMilli(cut + 1) }
		if _, err := db.Sweep(); err != nil {
			t.Fatal(err)
		}
		var kept model
		for _, e := range m {
			if e.Timestamp >= cut {
				kept = append(kept, e)
			}
		}
		check(t, kept)
	})
}

func TestQuota(t *testing.T) {
	const size = 1000
	envSize := int64(envelope(channel.ID{}, 0, size).Size())
	tests := []struct {
		name          string
		opt           Options
		otherAccepted bool // may another channel still store after the first is refused?
	}{
		{"per channel", Options{MaxChannelBytes: 5 * envSize, MaxTotalBytes: 100 * envSize}, true},
		{"total", Options{MaxChannelBytes: 100 * envSize, MaxTotalBytes: 5 * envSize}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.UnixMilli(10 * hour))
			tc.opt.Now, tc.opt.Retention = clk.Now, time.Hour
			db := openTemp(t, tc.opt)
			ch := newChannel()
			var stored []channel.MessageID
			for i := range 5 {
				id, err := db.Put(envelope(ch, 9*hour+int64(i), size))
				if err != nil {
					t.Fatalf("Put %d: %v", i, err)
				}
				stored = append(stored, id)
			}
			refused := envelope(ch, 10*hour, size)
			if _, err := db.Put(refused); !errors.Is(err, ErrQuotaExceeded) {
				t.Fatalf("Put over quota: %v, want ErrQuotaExceeded", err)
			}
			if ok, _ := db.Has(refused.ID()); ok {
				t.Fatal("refused message was stored")
			}
			for _, id := range stored {
				if _, err := db.Get(id); err != nil {
					t.Fatalf("stored message unreadable after refusal: %v", err)
				}
			}
			_, err := db.Put(envelope(newChannel(), 10*hour, size))
			if accepted := err == nil; accepted != tc.otherAccepted {
				t.Fatalf("Put to another channel: %v, want accepted=%v", err, tc.otherAccepted)
			}
			// Retention frees the budget.
			clk.Set(time.UnixMilli(10*hour + 30*60*1000))
			if n, err := db.Sweep(); err != nil || n != 5 {
				t.Fatalf("Sweep = %d, %v; want 5 removed", n, err)
			}
			if _, err := db.Put(refused); err != nil {
				t.Fatalf("Put after sweep: %v", err)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	defer func(n int) { sweepChunk = n }(sweepChunk)
	sweepChunk = 7 // several chunks
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "s.db"), Options{Now: clk.Now})
	now := clk.Now().UnixMilli()
	week := int64(7 * 24 * hour)
	a, b := newChannel(), newChannel()
	var old, fresh []*channel.Envelope
	for i := range 30 {
		old = append(old, envelope(a, now-week-1-int64(i)*1000, 20))
		fresh = append(fresh, envelope(a, now-week+int64(i), 20))
	}
	old = append(old, envelope(b, now-week-5, 20)) // b empties completely
	putAll(t, db, append(slices.Clone(old), fresh...))
	for _, s := range []struct {
		peer string
		ms   int64
	}{{"old-peer", now - week - 1}, {"fresh-peer", now - week}} {
		if err := db.SetSyncState(s.peer, a, s.ms); err != nil {
			t.Fatal(err)
		}
	}

	n, err := db.Sweep()
	if err != nil || n != len(old) {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, len(old))
	}
	for _, e := range old {
		if ok, _ := db.Has(e.ID()); ok {
			t.Fatalf("expired message at %d survived", e.Timestamp)
		}
	}
	for _, e := range fresh {
		if ok, _ := db.Has(e.ID()); !ok {
			t.Fatalf("message at %d (within retention) was removed", e.Timestamp)
		}
	}
	if ms, _ := db.SyncState("old-peer", a); ms != 0 {
		t.Fatalf("expired sync state survived: %d", ms)
	}
	if ms, _ := db.SyncState("fresh-peer", a); ms != now-week {
		t.Fatalf("fresh sync state = %d, want %d", ms, now-week)
	}
	chans, _ := db.Channels()
	if len(chans) != 1 || chans[0].Channel != a || chans[0].Messages != len(fresh) ||
		chans[0].Bytes != int64(len(fresh)*fresh[0].Size()) || chans[0].Newest != fresh[len(fresh)-1].Timestamp {
		t.Fatalf("Channels after sweep = %+v", chans)
	}
	if s, _ := db.Stats(); s.Messages != len(fresh) || s.Channels != 1 || s.FileSize <= 0 {
		t.Fatalf("Stats after sweep = %+v", s)
	}
	if n, err := db.Sweep(); n != 0 || err != nil {
		t.Fatalf("second Sweep = %d, %v; want nothing", n, err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestRunSweeperStopsOnClose(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(100 * 24 * hour))
	db := openTemp(t, Options{Now: clk.Now})
	e := envelope(newChannel(), 1, 10) // long expired
	if _, err := db.Put(e); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { db.RunSweeper(t.Context(), time.Hour); close(done) }()
	// The first sweep runs at once; wait for its effect, not for a time.
	for {
		if ok, _ := db.Has(e.ID()); !ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	db.Close()
	<-done
}

func TestSyncStateAndMetaPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	ch1, ch2 := newChannel(), newChannel()
	db, err := Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := db.SyncState("peerA", ch1); ms != 0 || err != nil {
		t.Fatalf("unset SyncState = %d, %v", ms, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.SetSyncState("peerA", ch1, 111))
	must(db.SetSyncState("peerA", ch2, 222))
	must(db.SetSyncState("peerB", ch1, 333))
	must(db.SetSyncState("peerA", ch1, 444)) // overwrite
	if err := db.SetSyncState("", ch1, 1); err == nil {
		t.Fatal("empty peer name accepted")
	}
	reg := db.Meta("registrations")
	must(reg.Put([]byte("k1"), []byte("v1")))
	must(reg.Put([]byte("k2"), []byte{}))
	must(reg.Put([]byte("k3"), []byte("v3")))
	must(reg.Delete([]byte("k3")))
	must(reg.Delete([]byte("never-there")))
	must(db.Meta("pairing").Put([]byte("k1"), []byte("other bucket")))
	must(db.Close())

	db = openAt(t, path, Options{})
	for _, c := range []struct {
		peer string
		ch   channel.ID
		want int64
	}{{"peerA", ch1, 444}, {"peerA", ch2, 222}, {"peerB", ch1, 333}, {"peerB", ch2, 0}} {
		if ms, err := db.SyncState(c.peer, c.ch); ms != c.want || err != nil {
			t.Errorf("SyncState(%s) = %d, %v; want %d", c.peer, ms, err, c.want)
		}
	}
	reg = db.Meta("registrations")
	if v, err := reg.Get([]byte("k1")); string(v) != "v1" || err != nil {
		t.Fatalf("Get k1 = %q, %v", v, err)
	}
	if v, err := reg.Get([]byte("k2")); v == nil || len(v) != 0 || err != nil {
		t.Fatalf("Get k2 = %v, %v; want empty, present", v, err)
	}
	if _, err := reg.Get([]byte("k3")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted: %v, want ErrNotFound", err)
	}
	if _, err := db.Meta("nobody").Get([]byte("k1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get in missing bucket: %v, want ErrNotFound", err)
	}
	var keys []string
	must(reg.ForEach(func(k, v []byte) error { keys = append(keys, string(k)); return nil }))
	if !slices.Equal(keys, []string{"k1", "k2"}) {
		t.Fatalf("ForEach keys = %v", keys)
	}
}

// TestCloseWaitsForWrites: every Put that returned success is on disk
// after Close; Puts after Close fail with ErrClosed.
func TestCloseWaitsForWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ch := newChannel()
	var mu sync.Mutex
	var acked []channel.MessageID
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				id, err := db.Put(envelope(ch, 5, 100))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Get(acked[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	db = openAt(t, path, Options{})
	for _, id := range acked {
		if ok, _ := db.Has(id); !ok {
			t.Fatalf("acknowledged %s missing after Close", id)
		}
	}
}

// TestFailedWriteSparesItsBatch: a write that fails inside a shared
// transaction gets its own error; the writes batched with it still commit.
func TestFailedWriteSparesItsBatch(t *testing.T) {
	db := openTemp(t, Options{})
	ch := newChannel()
	tooLong := make([]byte, 40000) // over bbolt's 32 KiB key limit
	var wg sync.WaitGroup
	var ids sync.Map
	for range 40 {
		wg.Go(func() {
			id, err := db.Put(envelope(ch, 7, 300))
			if err != nil {
				t.Errorf("Put batched with a failing write: %v", err)
			}
			ids.Store(id, true)
		})
		wg.Go(func() {
			if err := db.Meta("m").Put(tooLong, []byte("v")); err == nil {
				t.Error("Meta.Put with a 40000-byte key succeeded")
			}
		})
	}
	wg.Wait()
	n := 0
	ids.Range(func(k, _ any) bool {
		if ok, _ := db.Has(k.(channel.MessageID)); !ok {
			t.Errorf("message %s acknowledged but missing", k)
		}
		n++
		return true
	})
	if s, _ := db.Stats(); s.Messages != n || n != 40 {
		t.Fatalf("stats %+v after %d successful puts", s, n)
	}
}

// FuzzFingerprint checks Fingerprint's hour arithmetic against the model
// for arbitrary ranges, including ones near the int64 limits.
func FuzzFingerprint(f *testing.F) {
	db, m, a, _ := buildIndexed(f)
	for _, tc := range rangeCases {
		f.Add(tc.from, tc.to)
	}
	f.Add(int64(math.MaxInt64-5), int64(math.MaxInt64))
	f.Add(int64(math.MinInt64), int64(math.MinInt64+hour+1))
	f.Fuzz(func(t *testing.T, from, to int64) {
		got, err := db.Fingerprint(a, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.fingerprint(a, from, to); got != want {
			t.Fatalf("Fingerprint(%d, %d) = %d, want %d messages", from, to, got.Count, want.Count)
		}
	})
}

// TestSweepWaitsForTrustedClock: a Pi boots with a clock that may be years
// off until it synchronises; nothing may be expired by that clock.
func TestSweepWaitsForTrustedClock(t *testing.T) {
	clk := testkit.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) // far ahead: everything looks expired
	var trusted atomic.Bool
	db := openTemp(t, Options{Now: clk.Now, ClockTrusted: trusted.Load})
	ch := newChannel()
	e := envelope(ch, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli(), 20)
	putAll(t, db, []*channel.Envelope{e})
	if n, err := db.Sweep(); !errors.Is(err, ErrClockUntrusted) || n != 0 {
		t.Fatalf("Sweep with untrusted clock = %d, %v; want 0, ErrClockUntrusted", n, err)
	}
	if ok, _ := db.Has(e.ID()); !ok {
		t.Fatal("a message was expired by an untrusted clock")
	}
	trusted.Store(true)
	if n, err := db.Sweep(); err != nil || n != 1 {
		t.Fatalf("Sweep with trusted clock = %d, %v; want 1", n, err)
	}
}
