package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkPut measures durable ingest (each Put returns after fsync, and
// the timing ends once the WAL is applied to bbolt) with
// 1 and 64 concurrent writers, on a fresh store and on one pre-filled with
// 100k messages over 200 channels (random IDs spread every write over the
// whole index), beside ed25519.Verify of an envelope-sized message in the
// same run: the relay's other per-message cost. The pre-filled file is
// built once per process and copied for each run.
func BenchmarkPut(b *testing.B) {
	const ciphertext = 512 // a short padded text message
	b.Run("baseline=ed25519.Verify", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		msg := make([]byte, 80+ciphertext)
		rand.Read(msg)
		sig := ed25519.Sign(priv, msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify failed")
			}
		}
	})
	for _, fill := range []int{0, prefillMsgs} {
		for _, writers := range []int{1, 64} {
			name := fmt.Sprintf("writers=%d/fresh", writers)
			if fill > 0 {
				name = fmt.Sprintf("writers=%d/prefilled=%dk", writers, fill/1000)
			}
			b.Run(name, func(b *testing.B) {
				db, chans := benchStore(b, fill, ciphertext)
				now := time.Now().UnixMilli()
				es := make([]*channel.Envelope, b.N)
				for i := range es {
					es[i] = envelope(chans[i%len(chans)], now+int64(i), ciphertext)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(len(es)) {
								return
							}
							if _, err := db.Put(es[i]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				// Sustained ingest includes moving the WAL into bbolt:
				// the timed work ends once everything is applied.
				// ack-ns/op is the part until the last acknowledgement.
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ack-ns/op")
				if err := db.flush(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

const prefillMsgs = 100_000

var prefill struct {
	once  sync.Once
	dir   string
	path  string
	chans []channel.ID
	err   error
}

// prefilled returns a closed store file holding prefillMsgs messages of
// the last six days over 200 channels, and those channels.
func prefilled(b *testing.B, ciphertext int) (string, []channel.ID) {
	prefill.once.Do(func() {
		prefill.dir, prefill.err = os.MkdirTemp("", "store-bench-")
		if prefill.err != nil {
			return
		}
		prefill.path = filepath.Join(prefill.dir, "prefilled.db")
		db, err := Open(prefill.path, Options{Logger: quietLog})
		if err != nil {
			prefill.err = err
			return
		}
		prefill.chans = make([]channel.ID, 200)
		for i := range prefill.chans {
			prefill.chans[i] = newChannel()
		}
		now := time.Now().UnixMilli()
		span := int64(6 * 24 * hour)
		es := make([]*channel.Envelope, prefillMsgs)
		for i := range es {
			es[i] = envelope(prefill.chans[i%len(prefill.chans)], now-span+int64(i)*span/prefillMsgs, ciphertext)
		}
		putAll(b, db, es)
		prefill.err = db.Close()
	})
	if prefill.err != nil {
		b.Fatal(prefill.err)
	}
	return prefill.path, prefill.chans
}

// TestMain checks that the tests leave no goroutine behind, then removes
// the pre-filled benchmark file.
func TestMain(m *testing.M) {
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if prefill.dir != "" {
			os.RemoveAll(prefill.dir)
		}
		os.Exit(code)
	}))
}

func copyFile(b *testing.B, src, dst string) {
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFingerprint: a channel holding 7 days of messages (~120 an
// hour). "bucketed" is Fingerprint over the whole window with unaligned
// edges; "scan" is the same result computed from every index entry, the
// cost Fingerprint avoids.
func BenchmarkFingerprint(b *testing.B) {
	db := openTemp(b, Options{})
	ch := newChannel()
	now := time.Now().UnixMilli()
	week := int64(7 * 24 * hour)
	const n = 20000
	es := make([]*channel.Envelope, n)
	for i := range es {
		es[i] = envelope(ch, now-week+int64(i)*week/n, 64)
	}
	putAll(b, db, es)
	from, to := now-week-12345, now
	want, _ := db.Fingerprint(ch, from, to)
	if want.Count != n {
		b.Fatalf("setup: %d messages in range, want %d", want.Count, n)
	}
	b.Run("bucketed 7d", func(b *testing.B) {
		for b.Loop() {
			if f, err := db.Fingerprint(ch, from, to); err != nil || f != want {
				b.Fatal(f, err)
			}
		}
	})
	b.Run("bucketed 1h partial", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Fingerprint(ch, now-hour-777, now-3); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=scan 7d", func(b *testing.B) {
		for b.Loop() {
			hs, err := db.Headers(ch, from, to, 0)
			var f Fingerprint
			for _, h := range hs {
				f.add(h.ID[:], 1)
			}
			if err != nil || f != want {
				b.Fatal(f, err)
			}
		}
	})
}

// BenchmarkApply measures the applier alone: moving one group of 2,048
// acknowledged messages (64 channels) from the write-ahead log into bbolt,
// on a fresh store and on the pre-filled one of 100k messages. Puts run
// with the timer stopped and the automatic apply held back, so only the
// flush (one applyGroup) is timed; ns/op is per message.
func BenchmarkApply(b *testing.B) {
	const ciphertext, group = 512, 2048
	for _, fill := range []int{0, prefillMsgs} {
		name := "fresh"
		if fill > 0 {
			name = fmt.Sprintf("prefilled=%dk", fill/1000)
		}
		b.Run(name, func(b *testing.B) {
			defer holdApplier()()
			db, chans := benchStore(b, fill, ciphertext)
			now := time.Now().UnixMilli()
			var cpu time.Duration
			writes := boltWrites(db)
			b.ResetTimer()
			for done := 0; done < b.N; done += group {
				b.StopTimer()
				es := make([]*channel.Envelope, min(group, b.N-done))
				for i := range es {
					es[i] = envelope(chans[(done+i)%len(chans)], now+int64(done+i), ciphertext)
				}
				putAll(b, db, es)
				b.StartTimer()
				before := cpuTime()
				if err := db.flush(); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - before
			}
			b.StopTimer()
			// Wall time on a shared machine is mostly waiting for fsync;
			// the CPU the process spent and the pages bbolt wrote are
			// what the layout changes.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(boltWrites(db)-writes)/float64(b.N), "pagewrites/op")
		})
	}
}

// boltWrites is how many pages bbolt has written.
func boltWrites(db *DB) int64 {
	st := db.bolt.Stats()
	return st.TxStats.GetWrite()
}

// cpuTime is the CPU (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// holdApplier keeps the applier from applying on its own (by count, size
// or age) until the returned function restores the tunables.
func holdApplier() (restore func()) {
	msgs, bytes, age := applyMsgs, applyBytes, applyAge
	applyMsgs, applyBytes, applyAge = 1<<30, 1<<40, time.Hour
	return func() { applyMsgs, applyBytes, applyAge = msgs, bytes, age }
}

// BenchmarkHas: the duplicate check the relay runs before each signature
// check, on the pre-filled store of 100k messages: a stored message, an
// unknown one (what an ingest of new messages asks), and unknown ones
// asked from every core at once.
func BenchmarkHas(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	src, _ := prefilled(b, 512)
	copyFile(b, src, path)
	db := openAt(b, path, Options{})
	var stored []channel.MessageID
	for _, ch := range prefill.chans[:20] {
		hs, err := db.Headers(ch, math.MinInt64, math.MaxInt64, 50)
		if err != nil {
			b.Fatal(err)
		}
		for _, h := range hs {
			stored = append(stored, h.ID)
		}
	}
	unknown := make([]channel.MessageID, 1024)
	for i := range unknown {
		rand.Read(unknown[i][:])
	}
	tests := []struct {
		name string
		ids  []channel.MessageID
		want bool
	}{
		{"stored", stored, true},
		{"unknown", unknown, false},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if ok, err := db.Has(tc.ids[i%len(tc.ids)]); ok != tc.want || err != nil {
					b.Fatal(ok, err)
				}
				i++
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if ok, err := db.Has(tc.ids[i%len(tc.ids)]); ok != tc.want || err != nil {
						b.Error(ok, err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkFilterRebuild: building the ID filter from the pre-filled
// store's 100k IDs, as Open does and the applier does when the filter is
// full (it holds applies up meanwhile); ns/op is per stored message.
func BenchmarkFilterRebuild(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	src, _ := prefilled(b, 512)
	copyFile(b, src, path)
	db := openAt(b, path, Options{})
	b.ResetTimer()
	for range b.N / prefillMsgs {
		if err := db.rebuildFilter(true); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStore opens a store for a benchmark: fresh with 64 channels, or a
// copy of the prefilled store (fill > 0) with its channels.
func benchStore(b *testing.B, fill int, ciphertext int) (*DB, []channel.ID) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	chans := make([]channel.ID, 64)
	for i := range chans {
		chans[i] = newChannel()
	}
	if fill > 0 {
		var src string
		src, chans = prefilled(b, ciphertext)
		copyFile(b, src, path)
	}
	return openAt(b, path, Options{}), chans
}
