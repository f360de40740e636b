package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkPut measures durable ingest (each Put returns after fsync) with
// 1 and 64 concurrent writers, beside ed25519.Verify of an envelope-sized
// message in the same run: the relay's other per-message cost.
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
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := openTemp(b, Options{})
			chans := make([]channel.ID, 64)
			for i := range chans {
				chans[i] = newChannel()
			}
			now := time.Now().UnixMilli()
			es := make([]*channel.Envelope, b.N)
			for i := range es {
				es[i] = envelope(chans[i%len(chans)], now+int64(i), ciphertext)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
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
		})
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
