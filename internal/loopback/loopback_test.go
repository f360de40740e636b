package loopback

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

func prefix(a netip.Addr) netip.Prefix { p, _ := a.Prefix(24); return p }

// TestLayouts: every address is a host address in 127/8 other than
// 127.0.0.1; neither layout repeats an address within the counts its
// callers use, and the two never give the same one; Spread puts
// consecutive peers in distinct /24s, Packed fills one /24 before the next.
func TestLayouts(t *testing.T) {
	lo, one := netip.MustParsePrefix("127.0.0.0/8"), netip.MustParseAddr("127.0.0.1")
	seen := map[netip.Addr]string{}
	check := func(name string, i int, a netip.Addr) {
		t.Helper()
		if !lo.Contains(a) || a == one || a.As4()[3] == 0 {
			t.Fatalf("%s(%d) = %s", name, i, a)
		}
		if by, ok := seen[a]; ok {
			t.Fatalf("%s(%d) = %s, given before by %s", name, i, a, by)
		}
		seen[a] = fmt.Sprintf("%s(%d)", name, i)
	}
	for i := range PerPrefix * PerPrefix {
		check("Packed", i, Packed(i))
	}
	for i := range 100_000 {
		check("Spread", i, Spread(i))
	}
	prefixes := map[netip.Prefix]bool{}
	for i := range PerPrefix {
		prefixes[prefix(Spread(i))] = true
	}
	if len(prefixes) != PerPrefix {
		t.Errorf("Spread's first %d addresses are in %d /24s, want %d", PerPrefix, len(prefixes), PerPrefix)
	}
	if prefix(Packed(0)) != prefix(Packed(PerPrefix-1)) || prefix(Packed(0)) == prefix(Packed(PerPrefix)) {
		t.Errorf("Packed: %s, %s, %s: want the first %d in one /24 and the next in another", Packed(0), Packed(PerPrefix-1), Packed(PerPrefix), PerPrefix)
	}
}

// TestDialFrom: a host that does not listen and dials with DialFrom
// reaches a host on 127.0.0.1 from the address given, and a host
// listening on ListenAddr does so too.
func TestDialFrom(t *testing.T) {
	ctx := context.Background()
	server := testhost.New(t)
	for i, src := range []netip.Addr{Spread(7), Packed(7)} {
		var opts []libp2p.Option
		if i == 0 {
			opts = []libp2p.Option{libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport, DialFrom(src)), libp2p.Security(noise.ID, noise.New)}
		} else {
			opts = []libp2p.Option{libp2p.ListenAddrStrings(ListenAddr(src))}
		}
		h, err := libp2p.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
			t.Fatal(err)
		}
		conns := server.Network().ConnsToPeer(h.ID())
		if len(conns) == 0 {
			t.Fatalf("host %d: no connection on the server", i)
		}
		ip, err := manet.ToIP(conns[0].RemoteMultiaddr())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := netip.AddrFromSlice(ip); got.Unmap() != src {
			t.Errorf("host %d: the server sees %s, want %s", i, got, src)
		}
	}
}
