// Package loopback gives the peers that tests, attacks and benchmarks run
// on one machine source addresses of their own in 127.0.0.0/8 (Linux
// routes all of it to lo), so that a node's limits per source address and
// per address prefix see them as they would see phones in many homes, or
// an attacker's hosts, on the internet. It must not know any package of
// this module.
package loopback

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// PerPrefix is how many addresses each IPv4 /24 of these layouts holds.
const PerPrefix = 250

// Packed is address i of 127.1.0.0/16, filled one /24 at a time:
// 127.1.0.1 to 127.1.0.250, then 127.1.1.1 and so on, so that peers
// numbered close together share a prefix (an attacker with many hosts in
// one network). It wraps after PerPrefix*PerPrefix addresses.
func Packed(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1, byte((i / PerPrefix) % PerPrefix), byte(i%PerPrefix + 1)})
}

// Spread is address i of 127.2.0.0 to 127.251.255.255, each address in
// turn in the next of PerPrefix /24s (127.2.0.1, 127.2.1.1, ...,
// 127.2.249.1, 127.2.0.2, ...), so that peers numbered close together,
// which a benchmark starts at the same time, come from different
// prefixes (households). Addresses are distinct for the first
// PerPrefix^3 (15,625,000) i; the range is apart from Packed's and from
// 127.0.0.1.
func Spread(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(2 + (i/(PerPrefix*PerPrefix))%PerPrefix), byte(i % PerPrefix), byte((i/PerPrefix)%PerPrefix + 1)})
}

// DialFrom is a TCP transport option that makes every connection the host
// dials come from src, without the host listening anywhere (libp2p's own
// way, listening on src and reusing its port, costs a listener per host).
// Pass it to libp2p.Transport(tcp.NewTCPTransport, DialFrom(src)).
func DialFrom(src netip.Addr) tcp.Option {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	return tcp.WithDialerForAddr(func(multiaddr.Multiaddr) (tcp.ContextDialer, error) { return d, nil })
}

// ListenAddr is the libp2p listen address on src with a port the kernel
// picks; a host listening there dials from it too (TCP port reuse).
func ListenAddr(src netip.Addr) string { return fmt.Sprintf("/ip4/%s/tcp/0", src) }
