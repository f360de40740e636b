package provisioning

import (
	"crypto/ed25519"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// URIScheme starts every pairing URI (version 1 of the format).
const URIScheme = "RPPAIR1:"

// TokenSize is the pairing token's length in bytes (128 bits).
const TokenSize = 16

// MaxURIAddrs and MaxURILen bound what ParseURI accepts.
const (
	MaxURIAddrs = 8
	MaxURILen   = 512
)

// Token is a one-time pairing token.
type Token [TokenSize]byte

// b32 is RFC 4648 base32 without padding: upper-case letters and digits
// 2-7 only, so the URI stays in the QR code's compact alphanumeric mode.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Transport is how an address in the URI is dialled.
type Transport byte

// Transports a URI address may name.
const (
	TCP  Transport = 'T' // /tcp
	QUIC Transport = 'Q' // /udp/PORT/quic-v1
)

// Addr is one dialable address of the node.
type Addr struct {
	Transport Transport
	AddrPort  netip.AddrPort
}

// Multiaddr converts the address for libp2p.
func (a Addr) Multiaddr() ma.Multiaddr {
	ipProto := "ip4"
	if a.AddrPort.Addr().Is6() {
		ipProto = "ip6"
	}
	s := fmt.Sprintf("/%s/%s/tcp/%d", ipProto, a.AddrPort.Addr(), a.AddrPort.Port())
	if a.Transport == QUIC {
		s = fmt.Sprintf("/%s/%s/udp/%d/quic-v1", ipProto, a.AddrPort.Addr(), a.AddrPort.Port())
	}
	return ma.StringCast(s)
}

func (a Addr) String() string {
	host := a.AddrPort.Addr().String()
	if a.AddrPort.Addr().Is6() {
		host = "[" + strings.ToUpper(host) + "]"
	}
	return string(a.Transport) + host + ":" + strconv.Itoa(int(a.AddrPort.Port()))
}

// AddrFromMultiaddr converts /ip4|ip6/X/tcp/P and /ip4|ip6/X/udp/P/quic-v1;
// ok is false for any other shape (DNS, relays, WebTransport, zones).
func AddrFromMultiaddr(m ma.Multiaddr) (Addr, bool) {
	if len(m) < 2 {
		return Addr{}, false
	}
	var ip netip.Addr
	switch m[0].Protocol().Code {
	case ma.P_IP4, ma.P_IP6:
		var err error
		if ip, err = netip.ParseAddr(m[0].Value()); err != nil || ip.Zone() != "" {
			return Addr{}, false
		}
	default:
		return Addr{}, false
	}
	port, err := strconv.ParseUint(m[1].Value(), 10, 16)
	if err != nil || port == 0 {
		return Addr{}, false
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
	switch {
	case len(m) == 2 && m[1].Protocol().Code == ma.P_TCP:
		return Addr{TCP, ap}, true
	case len(m) == 3 && m[1].Protocol().Code == ma.P_UDP && m[2].Protocol().Code == ma.P_QUIC_V1:
		return Addr{QUIC, ap}, true
	}
	return Addr{}, false
}

// URI is the content of the pairing QR code: who the node is, where to
// reach it, and the token that proves the phone saw the code.
type URI struct {
	NodeKey ed25519.PublicKey // the node's libp2p identity key
	Token   Token
	Addrs   []Addr
}

// PeerID is the libp2p peer ID of the node named by the URI.
func (u URI) PeerID() (peer.ID, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(u.NodeKey)
	if err != nil {
		return "", fmt.Errorf("%w: node key: %v", ErrBadURI, err)
	}
	return peer.IDFromPublicKey(pk)
}

// String formats the URI as docs/PAIRING.md specifies.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(URIScheme)
	b.WriteString(b32.EncodeToString(u.NodeKey))
	b.WriteByte('/')
	b.WriteString(b32.EncodeToString(u.Token[:]))
	b.WriteByte('/')
	for i, a := range u.Addrs {
		if i > 0 {
			b.WriteByte('+')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// ParseURI parses a pairing URI strictly. Letters are case-insensitive
// (some scanners and URI handlers fold case); everything else must match
// the grammar exactly.
func ParseURI(s string) (URI, error) {
	if len(s) > MaxURILen {
		return URI{}, fmt.Errorf("%w: %d characters, at most %d", ErrBadURI, len(s), MaxURILen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return URI{}, fmt.Errorf("%w: byte 0x%02x at %d is not printable ASCII", ErrBadURI, s[i], i)
		}
	}
	s = strings.ToUpper(s)
	rest, ok := strings.CutPrefix(s, URIScheme)
	if !ok {
		return URI{}, fmt.Errorf("%w: does not start with %q", ErrBadURI, URIScheme)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return URI{}, fmt.Errorf("%w: want KEY/TOKEN/ADDRS after the scheme, got %d fields", ErrBadURI, len(parts))
	}
	key, err := decodeB32(parts[0], ed25519.PublicKeySize, "node key")
	if err != nil {
		return URI{}, err
	}
	if _, err := crypto.UnmarshalEd25519PublicKey(key); err != nil {
		return URI{}, fmt.Errorf("%w: node key: %v", ErrBadURI, err)
	}
	tok, err := decodeB32(parts[1], TokenSize, "token")
	if err != nil {
		return URI{}, err
	}
	u := URI{NodeKey: ed25519.PublicKey(key)}
	copy(u.Token[:], tok)
	if parts[2] == "" {
		return URI{}, fmt.Errorf("%w: no address", ErrBadURI)
	}
	addrs := strings.Split(parts[2], "+")
	if len(addrs) > MaxURIAddrs {
		return URI{}, fmt.Errorf("%w: %d addresses, at most %d", ErrBadURI, len(addrs), MaxURIAddrs)
	}
	for i, as := range addrs {
		a, err := parseAddr(as)
		if err != nil {
			return URI{}, fmt.Errorf("%w: address %d %q: %v", ErrBadURI, i+1, as, err)
		}
		u.Addrs = append(u.Addrs, a)
	}
	return u, nil
}

func decodeB32(s string, size int, what string) ([]byte, error) {
	b, err := b32.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("%w: %s must be %d bytes in base32 (%d characters A-Z 2-7)", ErrBadURI, what, size, b32.EncodedLen(size))
	}
	// Reject non-zero trailing bits: one value, one spelling.
	if b32.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: %s is not in canonical base32", ErrBadURI, what)
	}
	return b, nil
}

func parseAddr(s string) (Addr, error) {
	if s == "" {
		return Addr{}, fmt.Errorf("empty")
	}
	t := Transport(s[0])
	if t != TCP && t != QUIC {
		return Addr{}, fmt.Errorf("transport %q is not T or Q", s[0])
	}
	s = s[1:]
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Addr{}, fmt.Errorf("no port")
	}
	host, portStr := s[:i], s[i+1:]
	var ip netip.Addr
	var err error
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		ip, err = netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
			return Addr{}, fmt.Errorf("bad IPv6 address")
		}
	} else {
		ip, err = netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return Addr{}, fmt.Errorf("bad IPv4 address")
		}
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return Addr{}, fmt.Errorf("address %s is not dialable", ip)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || strconv.FormatUint(port, 10) != portStr {
		return Addr{}, fmt.Errorf("port %q is not 1-65535 without leading zeros", portStr)
	}
	return Addr{t, netip.AddrPortFrom(ip, uint16(port))}, nil
}

// rankAddr orders addresses for the URI: LAN IPv4 first (the phone is
// usually on the same network when it scans), then public IPv4, then IPv6,
// TCP before QUIC; loopback and link-local come last or not at all.
func rankAddr(a Addr) int {
	ip := a.AddrPort.Addr()
	r := 0
	switch {
	case ip.Is4() && ip.IsPrivate():
		r = 0
	case ip.Is4() && ip.IsGlobalUnicast():
		r = 2
	case ip.Is6() && (ip.IsGlobalUnicast() || ip.IsPrivate()):
		r = 4
	case ip.IsLoopback():
		r = 8
	default:
		return -1 // link-local and the like: unusable without a zone
	}
	if a.Transport == QUIC {
		r++
	}
	return r
}
