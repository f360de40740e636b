package discovery

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkS1ToBob measures a message posted at S1 until it is stored by
// Bob's phone through S2. warm: S1 and S2 already connected and
// authorized. cold: the S1–S2 connection is closed first, so S2 must look
// S1 up in the DHT, dial it and resync. Reports median and p99.
//
//	go test -run XXX -bench S1ToBob -benchtime 30x ./node/discovery
func BenchmarkS1ToBob(b *testing.B) {
	for _, cold := range []bool{false, true} {
		name := map[bool]string{false: "warm", true: "cold"}[cold]
		b.Run(name, func(b *testing.B) {
			w := newWriter(b)
			ch := w.key.ID()
			boot := startSuperNode(b, b.TempDir(), fastConfig())
			bob := newPhone(b, ch)
			cfg := fastConfig(info(boot.h))
			cfg.MaintainInterval = time.Hour // only Refresh drives the upkeep
			s1 := startSuperNode(b, b.TempDir(), cfg)
			s2 := startSuperNode(b, b.TempDir(), cfg, bob.h.ID())
			s1.serve(b, w.key)
			s2.serve(b, w.key)
			connectTo(b, bob.h, s2.h)
			eventually(b, "S1 and S2 authorized", func() bool {
				s1.disc.Refresh() // the first round may run before the keys are provided
				return len(s1.disc.SyncPeers(ch)) == 1 && len(s2.disc.SyncPeers(ch)) == 1
			})
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				if cold {
					b.StopTimer()
					s2.h.Network().ClosePeer(s1.h.ID())
					s1.h.Network().ClosePeer(s2.h.ID())
					eventually(b, "disconnected", func() bool { return len(s2.disc.SyncPeers(ch)) == 0 })
					b.StartTimer()
				}
				start := time.Now()
				id, err := s1.sync.Publish(context.Background(), w.seal(b, fmt.Sprint("m", i)))
				if err != nil {
					b.Fatal(err)
				}
				if cold {
					s2.disc.Refresh()
				}
				waitFor(b, bob.sub, id, "message at Bob")
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}
