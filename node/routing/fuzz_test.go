package routing

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/multiformats/go-multiaddr"
)

func FuzzParseChain(f *testing.F) {
	fr := newFriends(f)
	for _, c := range []Chain{nil, fr.c1, fr.c3} {
		f.Add(c.String())
	}
	f.Add(fr.c1.StringWithHint(bytes.Repeat([]byte{7}, 39)))
	f.Add("rpt")
	f.Add("rptAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, hint, err := ParseChainHint(s)
		if err != nil {
			return
		}
		again, h2, err := ParseChainHint(c.StringWithHint(hint))
		if err != nil || again.String() != c.String() || !bytes.Equal(h2, hint) {
			t.Fatalf("parsed chain does not round-trip: %v", err)
		}
		_, _ = c.Verify(fr.owner.Public(), fr.f1.Public(), time.Now())
	})
}

func FuzzDecodeRequest(f *testing.F) {
	fr := newFriends(f)
	r := &request{Identity: fr.f3.Public(), Chain: fr.c3, Channels: nil, Timestamp: time.UnixMilli(time.Now().UnixMilli()),
		Peer: newPeerID(f), Nonce: make([]byte, nonceSize)}
	rand.Read(r.Nonce)
	r.Channels = append(r.Channels, newChannelID(f), newChannelID(f))
	r.sign(fr.f3)
	b, err := r.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			return
		}
		_ = r.verifySignature()
		b2, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRequest(b2)
		if err != nil || !bytes.Equal(r2.signedBytes(), r.signedBytes()) {
			t.Fatalf("decoded request does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, r := range []response{{Status: StatusOK, Hop: 2, Expires: time.UnixMilli(1e12), Load: Load{3, 10}},
		{Status: StatusFull, Hop: HopInfinity, Detail: "full"}} {
		b, err := r.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		b2, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeResponse(b2)
		if err != nil || r2.Status != r.Status || r2.Hop != r.Hop || r2.Load != r.Load || r2.Detail != r.Detail {
			t.Fatalf("decoded response does not round-trip: %+v %+v %v", r, r2, err)
		}
	})
}

func FuzzDecodeNotice(f *testing.F) {
	b, err := encodeNotice(Notice{Status: StatusEvicted, Detail: "evicted by a registration at hop 0", At: time.UnixMilli(1e12)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x08, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNotice(b)
		if err != nil {
			return
		}
		b2, err := encodeNotice(n)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := decodeNotice(b2)
		if err != nil || n2.Status != n.Status || n2.Detail != n.Detail || !n2.At.Equal(n.At) {
			t.Fatalf("decoded notice does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeAdverts(f *testing.F) {
	f.Add(EncodeAdverts([]Advert{{Node: newPeerID(f), Hop: 1, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/192.0.2.7/tcp/4001")}}}))
	f.Add(EncodeAdverts(nil))
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := DecodeAdverts(b)
		if err != nil {
			return
		}
		as2, err := DecodeAdverts(EncodeAdverts(as))
		if err != nil || len(as2) != len(as) {
			t.Fatalf("decoded adverts do not round-trip: %v", err)
		}
		for i := range as {
			if as2[i].Node != as[i].Node || as2[i].Hop != as[i].Hop || len(as2[i].Addrs) != len(as[i].Addrs) {
				t.Fatalf("advert %d changed: %+v %+v", i, as[i], as2[i])
			}
		}
	})
}
