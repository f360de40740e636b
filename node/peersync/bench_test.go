package peersync

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire"
)

// BenchmarkIngest measures Publish: relay rule (Validate), durable store
// (fsync, group commit) and announcement to a peer that wants the channel
// and reads everything. verify is plain ed25519.Verify of the same size in
// the same run, the floor any relay pays per message.
//
//	go test ./node/peersync -run XXX -bench Ingest -benchtime 2000x
func BenchmarkIngest(b *testing.B) {
	const body = 200
	w := newWriter(b)
	sample := w.seal(b, string(make([]byte, body)), time.Now())
	raw, _ := sample.MarshalBinary()

	b.Run("verify", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		sig := ed25519.Sign(priv, raw)
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if !ed25519.Verify(pub, raw, sig) {
				b.Fatal("verify")
			}
		}
	})
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			n := newNode(b, nil)
			n.svc.Want(w.id())
			drainingPeer(b, n, w.id())
			envs := make([]*channel.Envelope, b.N)
			for i := range envs {
				envs[i] = w.seal(b, string(make([]byte, body)), time.Now())
			}
			b.SetBytes(int64(len(raw)))
			b.ResetTimer()
			cpu := processCPU()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(envs)) {
							return
						}
						if _, err := n.svc.Publish(context.Background(), envs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			cpu = processCPU() - cpu
			b.StopTimer()
			b.ReportMetric(float64(len(raw)), "envelope-B")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

// drainingPeer is a raw peer that wants ch and reads every frame sent to
// it, so announcing costs what it costs on a healthy link.
func drainingPeer(b *testing.B, n *node, ch channel.ID) {
	h := newRawPeerTB(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	st, err := h.NewStream(ctx, n.h.ID(), ProtocolID)
	if err != nil {
		b.Fatal(err)
	}
	if err := wire.WriteMsg(st, helloFrames("drain", 8, []channel.ID{ch})[0]); err != nil {
		b.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, st) }()
	for n.svc.sessionFor(h.ID()) == nil || !n.svc.sessionFor(h.ID()).peerWants(ch) {
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkResyncBytes reports the sync bytes on the wire (both
// directions, frames with their length prefixes; libp2p's yamux and Noise
// framing excluded) per missing message when a node that missed some
// messages reconnects, against the envelope's own size. It includes the
// Hello exchange and every reconciliation round.
//
//	go test ./node/peersync -run XXX -bench ResyncBytes -benchtime 1x
func BenchmarkResyncBytes(b *testing.B) {
	for _, tc := range []struct{ shared, missing, body int }{
		{1000, 10, 200}, {1000, 100, 200}, {1000, 100, 4000}, {0, 100, 200},
	} {
		b.Run(fmt.Sprintf("shared=%d/missing=%d/body=%d", tc.shared, tc.missing, tc.body), func(b *testing.B) {
			var perMsg, ratio float64
			for range b.N {
				perMsg, ratio = resyncOnce(b, tc.shared, tc.missing, tc.body)
			}
			b.ReportMetric(perMsg, "wire-B/missing-msg")
			b.ReportMetric(ratio, "x-envelope")
		})
	}
}

func resyncOnce(b *testing.B, shared, missing, body int) (perMsg, ratio float64) {
	b.StopTimer()
	w := newWriter(b)
	a, c := newNode(b, nil), newNode(b, nil)
	a.svc.Want(w.id())
	c.svc.Want(w.id())
	now := time.Now()
	var common, extra []*channel.Envelope
	for i := range shared {
		common = append(common, w.seal(b, string(make([]byte, body)), now.Add(-time.Duration(i)*time.Minute)))
	}
	envSize := 0
	for i := range missing {
		e := w.seal(b, string(make([]byte, body)), now.Add(-time.Duration(i)*7*time.Minute-time.Second))
		envSize += e.Size()
		extra = append(extra, e)
	}
	putAll(b, a.db, append(append([]*channel.Envelope(nil), common...), extra...))
	putAll(b, c.db, common)
	b.StartTimer()
	connect(b, c, a)
	for _, e := range extra {
		id := e.ID()
		testkit.Eventually(b, "resync", func() bool { return has(b, c, id) })
	}
	b.StopTimer()
	// Let the last reconcile round and its reply finish before counting.
	testkit.Eventually(b, "reconcile over", func() bool {
		ss := c.svc.sessionFor(a.h.ID())
		if ss == nil {
			return false
		}
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return len(ss.reconciling) == 0
	})
	time.Sleep(100 * time.Millisecond)
	st := c.svc.Stats(a.h.ID())
	total := float64(st.BytesIn + st.BytesOut)
	if st.FramesIn["body"] != uint64(missing) {
		b.Fatalf("%d bodies for %d missing messages", st.FramesIn["body"], missing)
	}
	return total / float64(missing), total / float64(envSize)
}
