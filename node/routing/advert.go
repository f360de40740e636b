package routing

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Advert says "I am registered with Node at hop Hop; reach it at Addrs".
// Clients post them as control content in their channels; a member that
// reads one is at Hop+1 from the node through the poster (AdvertHop).
type Advert struct {
	Node  peer.ID
	Addrs []multiaddr.Multiaddr
	Hop   int // the poster's hop at Node; HopInfinity for none
}

// Advert payload limits. EncodeAdverts keeps the first MaxAdverts adverts
// and the first MaxAdvertAddrs addresses of each; DecodeAdverts refuses
// anything beyond them.
const (
	advertVersion   = 1
	MaxAdverts      = 16
	MaxAdvertAddrs  = 8
	MaxAdvertBytes  = 8 << 10
	maxAddrBytes    = 256
	maxPeerIDBytes  = 64
	hopInfinityByte = 0xff
)

// EncodeAdverts encodes adverts as: version byte, count, and per advert
// the peer ID, the hop (0xff: infinity) and the addresses, each
// length-prefixed with an unsigned varint.
func EncodeAdverts(as []Advert) []byte {
	if len(as) > MaxAdverts {
		as = as[:MaxAdverts]
	}
	b := []byte{advertVersion}
	b = binary.AppendUvarint(b, uint64(len(as)))
	for _, a := range as {
		id := []byte(a.Node)
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		hop := byte(hopInfinityByte)
		if a.Hop >= 0 && a.Hop <= MaxHop {
			hop = byte(a.Hop)
		}
		b = append(b, hop)
		addrs := a.Addrs
		if len(addrs) > MaxAdvertAddrs {
			addrs = addrs[:MaxAdvertAddrs]
		}
		b = binary.AppendUvarint(b, uint64(len(addrs)))
		for _, m := range addrs {
			mb := m.Bytes()
			b = binary.AppendUvarint(b, uint64(len(mb)))
			b = append(b, mb...)
		}
	}
	return b
}

// DecodeAdverts parses what EncodeAdverts makes, refusing unknown
// versions, oversize payloads, bad peer IDs or addresses and trailing
// bytes with ErrMalformed.
func DecodeAdverts(b []byte) ([]Advert, error) {
	bad := func(format string, a ...any) ([]Advert, error) {
		return nil, fmt.Errorf("%w: adverts: "+format, append([]any{ErrMalformed}, a...)...)
	}
	if len(b) > MaxAdvertBytes {
		return bad("%d bytes, at most %d", len(b), MaxAdvertBytes)
	}
	if len(b) == 0 || b[0] != advertVersion {
		return bad("unknown version")
	}
	r := bytes.NewReader(b[1:])
	chunk := func(max int, what string) ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil || n == 0 || n > uint64(max) || n > uint64(r.Len()) {
			return nil, fmt.Errorf("%w: adverts: bad %s length", ErrMalformed, what)
		}
		out := make([]byte, n)
		_, _ = r.Read(out)
		return out, nil
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > MaxAdverts {
		return bad("bad count")
	}
	out := make([]Advert, 0, n)
	for i := range int(n) {
		idb, err := chunk(maxPeerIDBytes, "peer ID")
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromBytes(idb)
		if err != nil {
			return bad("advert %d peer ID: %v", i, err)
		}
		hop, err := r.ReadByte()
		if err != nil {
			return bad("advert %d: truncated", i)
		}
		a := Advert{Node: id, Hop: int(hop)}
		switch {
		case hop == hopInfinityByte:
			a.Hop = HopInfinity
		case hop > MaxHop:
			return bad("advert %d hop %d beyond %d", i, hop, MaxHop)
		}
		na, err := binary.ReadUvarint(r)
		if err != nil || na > MaxAdvertAddrs {
			return bad("advert %d: bad address count", i)
		}
		for j := range int(na) {
			mb, err := chunk(maxAddrBytes, "address")
			if err != nil {
				return nil, err
			}
			m, err := multiaddr.NewMultiaddrBytes(mb)
			if err != nil {
				return bad("advert %d address %d: %v", i, j, err)
			}
			a.Addrs = append(a.Addrs, m)
		}
		out = append(out, a)
	}
	if r.Len() != 0 {
		return bad("%d trailing bytes", r.Len())
	}
	return out, nil
}

// AdvertHop is the hop a member reading a from a channel would register
// at through the poster: one further.
func AdvertHop(a Advert) int {
	if a.Hop == HopInfinity || a.Hop >= MaxHop {
		return HopInfinity
	}
	return a.Hop + 1
}

// Candidate is a super node a client could register with, with what it
// measured: its round-trip time (zero: not measured) and the load the node
// reported.
type Candidate struct {
	Advert
	RTT  time.Duration
	Load Load
}

// Choose returns the best n candidates, one per node: lowest hop first
// (strangers last), then lowest measured RTT (unmeasured after measured),
// then lowest load fraction. Candidate.Hop is the hop the choosing client
// would register at (AdvertHop of the advert it read). The paper registers
// with 3 to 5.
func Choose(cands []Candidate, n int) []Candidate {
	best := map[peer.ID]Candidate{}
	for _, c := range cands {
		if old, ok := best[c.Node]; !ok || better(c, old) {
			best[c.Node] = c
		}
	}
	out := make([]Candidate, 0, len(best))
	for _, c := range best {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return bytes.Compare([]byte(a.Node), []byte(b.Node))
	})
	if n < 0 {
		n = 0
	}
	return out[:min(n, len(out))]
}

func better(a, b Candidate) bool {
	if ra, rb := rank(a.Hop), rank(b.Hop); ra != rb {
		return ra < rb
	}
	if (a.RTT > 0) != (b.RTT > 0) {
		return a.RTT > 0
	}
	if a.RTT != b.RTT {
		return a.RTT < b.RTT
	}
	return loadFraction(a.Load) < loadFraction(b.Load)
}

// loadFraction is how full a node says it is; one that says nothing counts
// as full.
func loadFraction(l Load) float64 {
	if l.Capacity <= 0 {
		return 1
	}
	return float64(l.Registered) / float64(l.Capacity)
}
