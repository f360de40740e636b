package store

import (
	"crypto/rand"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestIDFilter: no false negatives, and a false-positive rate near the
// design's ~0.8% once the filter holds as many IDs as it was sized for.
func TestIDFilter(t *testing.T) {
	tests := []struct {
		name   string
		stored int // what the filter is sized for, beyond filterMinIDs
	}{
		{"empty store", 0},
		{"small store", 1000},
		{"large store", 200_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIDFilter(tc.stored)
			ids := make([]channel.MessageID, f.size)
			for i := range ids {
				rand.Read(ids[i][:])
				f.add(ids[i][:])
			}
			if !f.full() {
				t.Fatalf("filter of %d IDs not full after %d adds", f.size, len(ids))
			}
			for _, id := range ids {
				if !f.mayHave(id[:]) {
					t.Fatalf("false negative for %x", id)
				}
			}
			const probes = 100_000
			fp := 0
			var id channel.MessageID
			for range probes {
				rand.Read(id[:])
				if f.mayHave(id[:]) {
					fp++
				}
			}
			if rate := float64(fp) / probes; rate > 0.015 {
				t.Fatalf("false-positive rate %.2f%%, want under 1.5%%", rate*100)
			}
			if got, limit := len(f.words)*8, int(f.size)*filterBitsPerID/8+8; got > limit {
				t.Fatalf("%d bytes for %d IDs, want at most %d", got, f.size, limit)
			}
		})
	}
}

// TestHasAcrossFilterRebuilds: with a filter sized for a handful of IDs
// and tiny apply groups, the filter is rebuilt again and again while
// messages are put, applied and asked for; an acknowledged message is
// always Has and always refused as a duplicate, a swept one is not Has,
// also after a reopen.
func TestHasAcrossFilterRebuilds(t *testing.T) {
	oldMin, oldMsgs := filterMinIDs, applyMsgs
	filterMinIDs, applyMsgs = 16, 8
	t.Cleanup(func() { filterMinIDs, applyMsgs = oldMin, oldMsgs })
	c := testkit.NewClock(time.Now())
	path := t.TempDir() + "/f.db"
	db := openAt(t, path, Options{Now: c.Now})
	first := db.filter.Load()
	ch := newChannel()
	now := c.Now().UnixMilli()
	const n = 600
	var (
		mu    sync.Mutex
		acked []*channel.Envelope
		done  atomic.Bool
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		defer done.Store(true)
		for i := range n {
			ts := now - int64(i%2)*int64(30*24*hour) // every other one expires
			e := envelope(ch, ts, 20)
			if _, err := db.Put(e); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, e)
			mu.Unlock()
		}
	})
	for range 2 {
		wg.Go(func() {
			for i := 0; !done.Load(); i++ {
				mu.Lock()
				if len(acked) == 0 {
					mu.Unlock()
					continue
				}
				e := acked[i*7919%len(acked)]
				mu.Unlock()
				if ok, err := db.Has(e.ID()); !ok || err != nil {
					t.Errorf("Has(acknowledged) = %v, %v", ok, err)
					return
				}
				if _, err := db.Put(e); !errors.Is(err, ErrExists) {
					t.Errorf("Put of an acknowledged message: %v, want ErrExists", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if db.filter.Load() == first {
		t.Fatal("the filter was never rebuilt")
	}
	if removed, err := db.Sweep(); err != nil || removed != n/2 {
		t.Fatalf("Sweep = %d, %v; want %d", removed, err, n/2)
	}
	check := func(db *DB) {
		t.Helper()
		for i, e := range acked {
			want := i%2 == 0
			if ok, err := db.Has(e.ID()); ok != want || err != nil {
				t.Fatalf("Has(message %d) = %v, %v; want %v", i, ok, err, want)
			}
		}
		var unknown channel.MessageID
		rand.Read(unknown[:])
		if ok, err := db.Has(unknown); ok || err != nil {
			t.Fatalf("Has(unknown) = %v, %v", ok, err)
		}
	}
	check(db)
	db.Close()
	db = openAt(t, path, Options{Now: c.Now, Retention: math.MaxInt64})
	check(db)
}
