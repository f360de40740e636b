// Package hint is the compact form of a node hint: where a person's home
// node can be reached (its peer ID and a few addresses), small enough to
// ride inside whatever that person hands a friend — a channel key string
// and its QR code, an invitation and its answer, a hop ticket, a device
// link — and inside the introductions a client gives its own home node.
// It is how the friend graph bootstraps the DHT (DESIGN.md: "the friend
// graph is the bootstrap").
//
// The package only encodes and decodes; every byte it decodes comes from
// someone else, so Decode is strict and bounded (MaxBytes, MaxNodes,
// MaxEntries). It must not know channels, clients, stores or the DHT.
//
// # Format
//
//	hint  = node *( %x01 node ) *ext
//	node  = key *addr                       ; key: the 32-byte Ed25519 public key
//	addr  = family-transport ip port        ; port: 2 bytes, big endian, not 0
//	family-transport = %x11 / %x12 / %x13   ; IPv4 (4 bytes): TCP, QUIC-v1, both
//	                 / %x21 / %x22 / %x23   ; IPv6 (16 bytes): TCP, QUIC-v1, both
//	ext   = %x80-FF len(1) len*OCTET        ; skipped: room for later kinds
//
// The first node has no type byte (it is the one every hint has), so a
// hint of one node with one IPv4 address is 39 bytes. A node's peer ID is
// the identity multihash of its Ed25519 key (bytes 00 24 08 01 12 20 and
// the key), so only the key travels. "Both" stands for TCP and QUIC on the
// same address and port, which is how a home node listens by default.
package hint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Bounds of a hint. Decode refuses anything larger; Encode never makes it.
const (
	// MaxBytes bounds an encoded hint (node/channel allows as many
	// trailing bytes in a key string).
	MaxBytes = 160
	// MaxNodes bounds the nodes of one hint.
	MaxNodes = 3
	// MaxEntries bounds the address entries of one node (each is one
	// address and port with TCP, QUIC or both).
	MaxEntries = 4
)

// KeySize is the size of a node's Ed25519 public key in a hint.
const KeySize = 32

// Element type bytes.
const (
	typeNode      = 0x01
	familyIPv4    = 0x10
	familyIPv6    = 0x20
	transportTCP  = 0x01
	transportQUIC = 0x02
	extMin        = 0x80
)

// Errors. Every error of this package wraps one of them.
var (
	// ErrMalformed: bytes that are not a hint, or a hint beyond the bounds.
	ErrMalformed = errors.New("hint: malformed")
	// ErrUnsupported: a node whose peer ID is not an Ed25519 key, which a
	// hint cannot carry.
	ErrUnsupported = errors.New("hint: peer ID is not an Ed25519 key")
)

// Node is one node a hint names: its peer ID and the addresses (without
// /p2p) it can be dialled at. A hint may name a node without addresses;
// it is then looked up in the DHT.
type Node struct {
	ID    peer.ID
	Addrs []multiaddr.Multiaddr
}

// AddrInfo returns n as a libp2p AddrInfo.
func (n Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.ID, Addrs: slices.Clone(n.Addrs)}
}

// entry is one address element: an IP and port with its transports.
type entry struct {
	ip    netip.Addr
	port  uint16
	tcp   bool
	quic  bool
	first int // position of its first address, for a stable order
}

// Encode returns the compact form of nodes. Every node must have an
// Ed25519 peer ID and only addresses Representable says yes to; TCP and
// QUIC on one address and port share an entry. Use Pick to choose the
// addresses of a node from all it has.
func Encode(nodes []Node) ([]byte, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no node", ErrMalformed)
	}
	if len(nodes) > MaxNodes {
		return nil, fmt.Errorf("%w: %d nodes, at most %d", ErrMalformed, len(nodes), MaxNodes)
	}
	var b []byte
	seen := map[peer.ID]bool{}
	for i, n := range nodes {
		key, err := nodeKey(n.ID)
		if err != nil {
			return nil, err
		}
		if seen[n.ID] {
			return nil, fmt.Errorf("%w: node %s named twice", ErrMalformed, n.ID)
		}
		seen[n.ID] = true
		if i > 0 {
			b = append(b, typeNode)
		}
		b = append(b, key...)
		es, err := entries(n.Addrs)
		if err != nil {
			return nil, err
		}
		if len(es) > MaxEntries {
			return nil, fmt.Errorf("%w: node %s has %d address entries, at most %d", ErrMalformed, n.ID.ShortString(), len(es), MaxEntries)
		}
		for _, e := range es {
			b = e.append(b)
		}
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxBytes)
	}
	return b, nil
}

// nodeKey returns the 32-byte Ed25519 key a peer ID inlines.
func nodeKey(id peer.ID) ([]byte, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsupported, id, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %s is a %s key", ErrUnsupported, id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("%w: %s: key of %d bytes", ErrUnsupported, id, len(raw))
	}
	return raw, nil
}

// peerID is the peer ID of a 32-byte Ed25519 key.
func peerID(key []byte) (peer.ID, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(key)
	if err != nil {
		return "", fmt.Errorf("%w: node key: %v", ErrMalformed, err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("%w: node key: %v", ErrMalformed, err)
	}
	return id, nil
}

// entries groups addresses by IP and port, in the order they come.
func entries(addrs []multiaddr.Multiaddr) ([]*entry, error) {
	var out []*entry
	for i, a := range addrs {
		ip, port, quic, ok := split(a)
		if !ok {
			return nil, fmt.Errorf("%w: address %s cannot be carried in a hint", ErrMalformed, a)
		}
		var e *entry
		for _, x := range out {
			if x.ip == ip && x.port == port {
				e = x
			}
		}
		if e == nil {
			e = &entry{ip: ip, port: port, first: i}
			out = append(out, e)
		}
		if quic {
			e.quic = true
		} else {
			e.tcp = true
		}
	}
	return out, nil
}

func (e *entry) append(b []byte) []byte {
	t := byte(familyIPv4)
	if e.ip.Is6() {
		t = familyIPv6
	}
	if e.tcp {
		t |= transportTCP
	}
	if e.quic {
		t |= transportQUIC
	}
	b = append(b, t)
	b = append(b, e.ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, e.port)
}

// Representable reports whether a hint can carry address a: /ip4 or
// /ip6 (no zone) with /tcp/PORT or /udp/PORT/quic-v1, optionally ending
// in /p2p/ID, on a unicast address and a port other than 0.
func Representable(a multiaddr.Multiaddr) bool {
	_, _, _, ok := split(a)
	return ok
}

// split reads an address a hint can carry.
func split(a multiaddr.Multiaddr) (ip netip.Addr, port uint16, quic, ok bool) {
	if a == nil {
		return
	}
	ps := []multiaddr.Component(a)
	if n := len(ps); n > 0 && ps[n-1].Protocol().Code == multiaddr.P_P2P {
		ps = ps[:n-1]
	}
	if len(ps) < 2 {
		return
	}
	switch ps[0].Protocol().Code {
	case multiaddr.P_IP4, multiaddr.P_IP6:
		var err error
		if ip, err = netip.ParseAddr(ps[0].Value()); err != nil {
			return
		}
	default:
		return
	}
	if !usable(ip) {
		return
	}
	var proto string
	switch {
	case len(ps) == 2 && ps[1].Protocol().Code == multiaddr.P_TCP:
		proto = ps[1].Value()
	case len(ps) == 3 && ps[1].Protocol().Code == multiaddr.P_UDP && ps[2].Protocol().Code == multiaddr.P_QUIC_V1:
		proto, quic = ps[1].Value(), true
	default:
		return
	}
	var p int
	if _, err := fmt.Sscanf(proto, "%d", &p); err != nil || p <= 0 || p > 65535 {
		return
	}
	return ip, uint16(p), quic, true
}

// usable: a unicast address that means one machine. An IPv4-mapped IPv6
// address is refused so that every address has one encoding.
func usable(ip netip.Addr) bool {
	return ip.IsValid() && ip.Zone() == "" && !ip.Is4In6() && !ip.IsUnspecified() &&
		!ip.IsMulticast() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!(ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// Decode reads a hint. It is strict: anything beyond the bounds, a
// truncated element, an unknown type below 0x80, a node named twice, an
// address named twice or an address no node owns fails the whole hint.
// Extension elements (0x80-0xFF) are skipped.
func Decode(b []byte) ([]Node, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxBytes)
	}
	if len(b) < KeySize {
		return nil, fmt.Errorf("%w: %d bytes, a node key alone is %d", ErrMalformed, len(b), KeySize)
	}
	var out []Node
	var es []*entry
	seen := map[peer.ID]bool{}
	addNode := func(key []byte) error {
		if len(out) == MaxNodes {
			return fmt.Errorf("%w: more than %d nodes", ErrMalformed, MaxNodes)
		}
		id, err := peerID(key)
		if err != nil {
			return err
		}
		if seen[id] {
			return fmt.Errorf("%w: node %s named twice", ErrMalformed, id.ShortString())
		}
		seen[id] = true
		out = append(out, Node{ID: id})
		es = es[:0]
		return nil
	}
	if err := addNode(b[:KeySize]); err != nil {
		return nil, err
	}
	b = b[KeySize:]
	for len(b) > 0 {
		t := b[0]
		b = b[1:]
		switch {
		case t == typeNode:
			if len(b) < KeySize {
				return nil, fmt.Errorf("%w: node key cut short", ErrMalformed)
			}
			if err := addNode(b[:KeySize]); err != nil {
				return nil, err
			}
			b = b[KeySize:]
		case t >= extMin:
			if len(b) < 1 || len(b) < 1+int(b[0]) {
				return nil, fmt.Errorf("%w: extension 0x%02x cut short", ErrMalformed, t)
			}
			b = b[1+int(b[0]):]
		default:
			e, rest, err := decodeEntry(t, b)
			if err != nil {
				return nil, err
			}
			b = rest
			for _, x := range es {
				if x.ip == e.ip && x.port == e.port {
					return nil, fmt.Errorf("%w: address %s named twice", ErrMalformed, netip.AddrPortFrom(e.ip, e.port))
				}
			}
			if len(es) == MaxEntries {
				return nil, fmt.Errorf("%w: more than %d address entries for a node", ErrMalformed, MaxEntries)
			}
			es = append(es, e)
			n := &out[len(out)-1]
			n.Addrs = append(n.Addrs, e.multiaddrs()...)
		}
	}
	return out, nil
}

func decodeEntry(t byte, b []byte) (*entry, []byte, error) {
	var size int
	switch t & 0xf0 {
	case familyIPv4:
		size = 4
	case familyIPv6:
		size = 16
	default:
		return nil, nil, fmt.Errorf("%w: unknown element type 0x%02x", ErrMalformed, t)
	}
	tr := t & 0x0f
	if tr == 0 || tr > transportTCP|transportQUIC {
		return nil, nil, fmt.Errorf("%w: unknown element type 0x%02x", ErrMalformed, t)
	}
	if len(b) < size+2 {
		return nil, nil, fmt.Errorf("%w: address cut short", ErrMalformed)
	}
	ip, _ := netip.AddrFromSlice(b[:size])
	port := binary.BigEndian.Uint16(b[size:])
	if !usable(ip) || port == 0 {
		return nil, nil, fmt.Errorf("%w: address %s is not usable", ErrMalformed, netip.AddrPortFrom(ip, port))
	}
	return &entry{ip: ip, port: port, tcp: tr&transportTCP != 0, quic: tr&transportQUIC != 0}, b[size+2:], nil
}

// multiaddrs are the entry's addresses, TCP first.
func (e *entry) multiaddrs() []multiaddr.Multiaddr {
	fam := "ip4"
	if e.ip.Is6() {
		fam = "ip6"
	}
	base := fmt.Sprintf("/%s/%s", fam, e.ip)
	var out []multiaddr.Multiaddr
	if e.tcp {
		out = append(out, multiaddr.StringCast(fmt.Sprintf("%s/tcp/%d", base, e.port)))
	}
	if e.quic {
		out = append(out, multiaddr.StringCast(fmt.Sprintf("%s/udp/%d/quic-v1", base, e.port)))
	}
	return out
}
