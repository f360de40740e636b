package routing

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
)

func TestAdvertsRoundTrip(t *testing.T) {
	as := []Advert{
		{Node: testhost.NewPeerID(t), Hop: 0, Addrs: []multiaddr.Multiaddr{
			multiaddr.StringCast("/ip4/192.0.2.7/tcp/4001"), multiaddr.StringCast("/ip6/2001:db8::1/udp/4001/quic-v1")}},
		{Node: testhost.NewPeerID(t), Hop: 5},
		{Node: testhost.NewPeerID(t), Hop: HopInfinity, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/dns4/node.example/tcp/4001")}},
	}
	b := EncodeAdverts(as)
	got, err := DecodeAdverts(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(as) {
		t.Fatalf("%d adverts, want %d", len(got), len(as))
	}
	for i := range as {
		if got[i].Node != as[i].Node || got[i].Hop != as[i].Hop || len(got[i].Addrs) != len(as[i].Addrs) {
			t.Fatalf("advert %d: %+v, want %+v", i, got[i], as[i])
		}
		for j := range as[i].Addrs {
			if !got[i].Addrs[j].Equal(as[i].Addrs[j]) {
				t.Fatalf("advert %d addr %d: %s", i, j, got[i].Addrs[j])
			}
		}
	}
	if !bytes.Equal(EncodeAdverts(got), b) {
		t.Fatal("re-encoding differs")
	}
	if AdvertHop(as[0]) != 1 || AdvertHop(as[2]) != HopInfinity || AdvertHop(Advert{Hop: MaxHop}) != HopInfinity {
		t.Fatal("AdvertHop")
	}
	// Encoding caps what it keeps, so the result always decodes.
	many := make([]Advert, MaxAdverts+3)
	for i := range many {
		many[i] = Advert{Node: testhost.NewPeerID(t), Hop: 1, Addrs: slices.Repeat(as[0].Addrs, MaxAdvertAddrs)}
	}
	if got, err := DecodeAdverts(EncodeAdverts(many)); err != nil || len(got) != MaxAdverts || len(got[0].Addrs) != MaxAdvertAddrs {
		t.Fatalf("capped encoding: %d adverts, %v", len(got), err)
	}
}

func TestDecodeAdvertsRefuses(t *testing.T) {
	good := EncodeAdverts([]Advert{{Node: testhost.NewPeerID(t), Hop: 1, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/192.0.2.7/tcp/4001")}}})
	badHop := bytes.Clone(good)
	badHop[2+int(good[2])+1] = MaxHop + 1 // version, count, id length, id, hop
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{2}, good[1:]...)},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-2]},
		{"hop beyond max", badHop},
		{"too many", append([]byte{1}, byte(MaxAdverts+1))},
		{"oversize", make([]byte, MaxAdvertBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeAdverts(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeAdverts: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	ids := make([]peer.ID, 6)
	for i := range ids {
		ids[i] = testhost.NewPeerID(t)
	}
	c := func(i, hop int, rtt time.Duration, reg int) Candidate {
		return Candidate{Advert: Advert{Node: ids[i], Hop: hop}, RTT: rtt, Load: Load{Registered: reg, Capacity: 100}}
	}
	tests := []struct {
		name  string
		cands []Candidate
		n     int
		want  []peer.ID
	}{
		{"hop first", []Candidate{c(0, 3, time.Millisecond, 0), c(1, 1, time.Second, 90), c(2, HopInfinity, time.Microsecond, 0)}, 3,
			[]peer.ID{ids[1], ids[0], ids[2]}},
		{"then RTT, unmeasured last", []Candidate{c(0, 2, 0, 0), c(1, 2, 50*time.Millisecond, 0), c(2, 2, 10*time.Millisecond, 0)}, 3,
			[]peer.ID{ids[2], ids[1], ids[0]}},
		{"then load", []Candidate{c(0, 1, time.Millisecond, 80), c(1, 1, time.Millisecond, 10), {Advert: Advert{Node: ids[2], Hop: 1}, RTT: time.Millisecond}}, 3,
			[]peer.ID{ids[1], ids[0], ids[2]}},
		{"one per node, best kept", []Candidate{c(0, 4, time.Millisecond, 0), c(0, 1, time.Millisecond, 0), c(1, 2, time.Millisecond, 0)}, 5,
			[]peer.ID{ids[0], ids[1]}},
		{"n caps", []Candidate{c(0, 1, 0, 0), c(1, 2, 0, 0), c(2, 3, 0, 0), c(3, 4, 0, 0), c(4, 5, 0, 0), c(5, 6, 0, 0)}, 3,
			[]peer.ID{ids[0], ids[1], ids[2]}},
		{"none", nil, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Choose(tt.cands, tt.n)
			var ps []peer.ID
			for _, g := range got {
				ps = append(ps, g.Node)
			}
			if !slices.Equal(ps, tt.want) {
				t.Fatalf("Choose: %v, want %v", ps, tt.want)
			}
			if len(got) > 0 && tt.name == "one per node, best kept" && got[0].Hop != 1 {
				t.Fatalf("kept hop %d for a node advertised at 1 and 4", got[0].Hop)
			}
		})
	}
}
