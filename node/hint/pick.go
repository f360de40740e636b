package hint

import (
	"net/netip"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Pick makes the hint Node for id from every address the caller knows,
// keeping at most maxEntries address entries (TCP and QUIC on one address
// and port are one entry), best first: public IPv4, private IPv4 (a LAN,
// or a carrier's shared range), public IPv6, unique-local IPv6; loopback
// only when nothing else is known. Addresses a hint cannot carry are left
// out. It fails with ErrUnsupported when id is not an Ed25519 key.
func Pick(id peer.ID, addrs []multiaddr.Multiaddr, maxEntries int) (Node, error) {
	if _, err := nodeKey(id); err != nil {
		return Node{}, err
	}
	maxEntries = min(max(maxEntries, 0), MaxEntries)
	var ok []multiaddr.Multiaddr
	for _, a := range addrs {
		if Representable(a) {
			ok = append(ok, a)
		}
	}
	es, _ := entries(ok) // every address was checked
	slices.SortStableFunc(es, func(a, b *entry) int {
		if ra, rb := rank(a.ip), rank(b.ip); ra != rb {
			return ra - rb
		}
		return a.first - b.first
	})
	if len(es) > 0 && rank(es[0].ip) < rankLoopback {
		for len(es) > 0 && rank(es[len(es)-1].ip) == rankLoopback {
			es = es[:len(es)-1]
		}
	}
	n := Node{ID: id}
	for _, e := range es[:min(len(es), maxEntries)] {
		n.Addrs = append(n.Addrs, e.multiaddrs()...)
	}
	return n, nil
}

const (
	rankPublic4 = iota
	rankPrivate4
	rankPublic6
	rankPrivate6
	rankLoopback
)

// cgnat is the carriers' shared address space (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func rank(ip netip.Addr) int {
	switch {
	case ip.IsLoopback():
		return rankLoopback
	case ip.Is4() && (ip.IsPrivate() || cgnat.Contains(ip)):
		return rankPrivate4
	case ip.Is4():
		return rankPublic4
	case ip.IsPrivate():
		return rankPrivate6
	default:
		return rankPublic6
	}
}
