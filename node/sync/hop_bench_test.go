package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkRelayHop measures one node-to-node hop at full speed: 64
// goroutines publish on A; B, which wants the channel, fetches and stores
// every message. It reports the rate at A and the rate at which B has
// them all; when B's rate falls behind A's, the hop (not the publishers)
// bounds a relay, and its queue grows without bound under sustained load.
// 16 was the default before it became the fetch window.
//
//	go test ./node/sync -run XXX -bench RelayHop -benchtime 3000x
func BenchmarkRelayHop(b *testing.B) {
	for _, ic := range []int{16, DefaultIngestConcurrency} {
		b.Run(fmt.Sprintf("ingest-concurrency=%d", ic), func(b *testing.B) {
			w := newWriter(b)
			opt := func(c *Config) { c.IngestConcurrency = ic }
			src, dst := newNode(b, nil, opt), newNode(b, nil, opt)
			src.svc.Want(w.id())
			dst.svc.Want(w.id())
			connect(b, src, dst)
			eventually(b, "session", func() bool { return sessionUp(src, dst) })
			envs := make([]*channel.Envelope, b.N)
			for i := range envs {
				envs[i] = w.seal(b, fmt.Sprint(i), time.Now())
			}
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg gosync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(len(envs)); i = next.Add(1) - 1 {
						if _, err := src.svc.Publish(context.Background(), envs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			published := time.Since(start)
			eventually(b, "all at B", func() bool { return count(b, dst, w.id()) == b.N })
			all := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
			b.ReportMetric(float64(b.N)/all.Seconds(), "relayed/s")
		})
	}
}
