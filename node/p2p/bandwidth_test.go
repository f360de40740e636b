package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestBandwidthCountsStreamBytes: bytes written on a stream are counted
// as sent by one host and received by the other.
func TestBandwidthCountsStreamBytes(t *testing.T) {
	var bwA, bwB Bandwidth
	a := newHost(t, Config{Bandwidth: &bwA})
	b := newHost(t, Config{Bandwidth: &bwB})
	const proto = "/redpanda/test/sink"
	got := make(chan int, 1)
	b.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		n, _ := io.Copy(io.Discard, s)
		got <- int(n)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 100_000)
	if _, err := s.Write(payload); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if n := <-got; n != len(payload) {
		t.Fatalf("received %d bytes", n)
	}
	if _, out := bwA.Totals(); out < int64(len(payload)) {
		t.Errorf("sender counted %d bytes out, want at least %d", out, len(payload))
	}
	if in, _ := bwB.Totals(); in < int64(len(payload)) {
		t.Errorf("receiver counted %d bytes in, want at least %d", in, len(payload))
	}
}
