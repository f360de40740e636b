package peerlimit

import (
	"fmt"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrKey(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"/ip4/192.0.2.7/tcp/4001", "ip4:192.0.2.7"},
		{"/ip4/192.0.2.7/udp/4001/quic-v1", "ip4:192.0.2.7"},
		{"/ip6/2001:db8:0:1ff:1:2:3:4/tcp/4001", "ip6:2001:db8:0:100::/56"},
		{"/ip6/2001:db8:0:1aa::9/tcp/1", "ip6:2001:db8:0:100::/56"},
		{"/ip6/::ffff:192.0.2.7/tcp/4001", "ip4:192.0.2.7"},
		{"/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7/p2p-circuit",
			"relay:12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7"},
	} {
		a, err := ma.NewMultiaddr(tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := AddrKey(a); got != tt.want {
			t.Errorf("AddrKey(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if AddrKey(nil) != "none" {
		t.Error("nil address")
	}
}

// TestLimiterPerKey: one key's bucket running dry leaves the others full,
// and it refills with time.
func TestLimiterPerKey(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10*time.Second, 3, 100)
	l.SetClock(func() time.Time { return now })
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("a refused at %d of its burst", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("a allowed past its burst")
	}
	if w := l.Wait("a"); w != 10*time.Second {
		t.Fatalf("a's wait %s, want 10s", w)
	}
	if !l.Allow("b") {
		t.Fatal("b refused because a ran dry")
	}
	now = now.Add(10 * time.Second)
	if l.Wait("a") != 0 || !l.Allow("a") {
		t.Fatal("a not refilled after 10 s")
	}
}

// TestLimiterBounded: the table never holds more than max keys; the
// least recently used goes first.
func TestLimiterBounded(t *testing.T) {
	l := New(time.Hour, 1, 8)
	l.Allow("keep")
	for i := range 100 {
		l.Allow("keep") // used again and again: stays
		l.Allow(fmt.Sprint(i))
		if l.Len() > 8 {
			t.Fatalf("%d keys, bound 8", l.Len())
		}
	}
	if l.Allow("keep") {
		t.Fatal("the recently used key was forgotten (its bucket is full again)")
	}
}
