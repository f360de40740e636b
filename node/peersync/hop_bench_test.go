package peersync

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// hopPublishers is more than the old window of 64, so A commits larger
// batches than a 64-message window lets B take in one commit.
const hopPublishers = 256

// BenchmarkRelayHop measures one node-to-node hop at full speed:
// hopPublishers goroutines publish on A; B, which wants the channel, fetches and stores
// every message. It reports the rate at A and the rate at which B has
// them all; when B's rate falls behind A's, the hop (not the publishers)
// bounds a relay, and its queue grows without bound under sustained load.
// "window=64" is the configuration before the windows were sized in
// bytes (64 fetches, 64 messages ingesting per peer), run beside the
// defaults as the baseline. cpu-µs/msg is the process's CPU time (both
// nodes and the publishers) per message.
//
//	go test ./node/peersync -run XXX -bench RelayHop -benchtime 3000x
func BenchmarkRelayHop(b *testing.B) {
	for _, tc := range []struct {
		name string
		opt  func(*Config)
	}{
		{"window=64", func(c *Config) { c.MaxInFlight, c.IngestConcurrency = 64, 64 }},
		{"defaults", func(*Config) {}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := newWriter(b)
			opt := tc.opt
			src, dst := newNode(b, nil, opt), newNode(b, nil, opt)
			src.svc.Want(w.id())
			dst.svc.Want(w.id())
			connect(b, src, dst)
			testkit.Eventually(b, "session", func() bool { return sessionUp(src, dst) })
			envs := make([]*channel.Envelope, b.N)
			for i := range envs {
				envs[i] = w.seal(b, fmt.Sprint(i), time.Now())
			}
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range hopPublishers {
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
			testkit.Eventually(b, "all at B", func() bool { return count(b, dst, w.id()) == b.N })
			all, cpu := time.Since(start), processCPU()-cpu
			b.StopTimer()
			b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
			b.ReportMetric(float64(b.N)/all.Seconds(), "relayed/s")
			// Both nodes and the publishers: what one relayed message
			// costs the machine, less moved by other load than the rates.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}
