package hint

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// testID is the peer ID of the Ed25519 key from seed b×32.
func testID(t testing.TB, b byte) peer.ID {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mas(t testing.TB, ss ...string) []multiaddr.Multiaddr {
	t.Helper()
	var out []multiaddr.Multiaddr
	for _, s := range ss {
		out = append(out, multiaddr.StringCast(s))
	}
	return out
}

func sameNodes(a, b []Node) bool {
	return slices.EqualFunc(a, b, func(x, y Node) bool {
		return x.ID == y.ID && slices.EqualFunc(x.Addrs, y.Addrs, func(p, q multiaddr.Multiaddr) bool { return p.Equal(q) })
	})
}

// TestGolden pins the format: the node key of seed 07×32 (the pairing
// golden vector's node, docs/PAIRING.md) with TCP and QUIC on one LAN
// address, then a second node with an IPv6 TCP address.
func TestGolden(t *testing.T) {
	a, b := testID(t, 7), testID(t, 9)
	if a.String() != "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7" {
		t.Fatalf("seed 07 is %s", a)
	}
	nodes := []Node{
		{ID: a, Addrs: mas(t, "/ip4/192.168.178.23/tcp/4001", "/ip4/192.168.178.23/udp/4001/quic-v1")},
		{ID: b, Addrs: mas(t, "/ip6/2001:db8::1/tcp/4001")},
	}
	enc, err := Encode(nodes)
	if err != nil {
		t.Fatal(err)
	}
	const want = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c" + // node key
		"13c0a8b2170fa1" + // TCP+QUIC 192.168.178.23:4001
		"01fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618" + // second node
		"2120010db80000000000000000000000010fa1" // TCP [2001:db8::1]:4001
	if got := hex.EncodeToString(enc); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	if len(enc) != 39+33+19 {
		t.Fatalf("%d bytes", len(enc))
	}
	dec, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameNodes(dec, nodes) {
		t.Fatalf("decoded %v, want %v", dec, nodes)
	}
}

func TestSizes(t *testing.T) {
	id := testID(t, 1)
	for _, tc := range []struct {
		addrs []string
		size  int
	}{
		{nil, 32},
		{[]string{"/ip4/1.2.3.4/tcp/4001"}, 39},
		{[]string{"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/udp/4001/quic-v1"}, 39},
		{[]string{"/ip4/1.2.3.4/tcp/4001", "/ip4/10.0.0.2/tcp/4001"}, 46},
		{[]string{"/ip6/2001:db8::2/udp/4001/quic-v1"}, 51},
	} {
		enc, err := Encode([]Node{{ID: id, Addrs: mas(t, tc.addrs...)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != tc.size {
			t.Errorf("%v: %d bytes, want %d", tc.addrs, len(enc), tc.size)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	id := testID(t, 1)
	rsa := peer.ID(append([]byte{0x12, 0x20}, bytes.Repeat([]byte{1}, 32)...)) // a SHA-256 peer ID: no key inside
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, "/ip4/10.0.0."+string(rune('1'+i))+"/tcp/1")
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		nodes []Node
		want  error
	}{
		{"no node", nil, ErrMalformed},
		{"hashed peer ID", []Node{{ID: rsa}}, ErrUnsupported},
		{"dns address", []Node{{ID: id, Addrs: mas(t, "/dns4/example.com/tcp/1")}}, ErrMalformed},
		{"port 0", []Node{{ID: id, Addrs: mas(t, "/ip4/1.2.3.4/tcp/0")}}, ErrMalformed},
		{"unspecified", []Node{{ID: id, Addrs: mas(t, "/ip4/0.0.0.0/tcp/1")}}, ErrMalformed},
		{"link-local", []Node{{ID: id, Addrs: mas(t, "/ip6/fe80::1/tcp/1")}}, ErrMalformed},
		{"relay", []Node{{ID: id, Addrs: mas(t, "/ip4/1.2.3.4/tcp/1/p2p/"+id.String()+"/p2p-circuit")}}, ErrMalformed},
		{"quic draft", []Node{{ID: id, Addrs: mas(t, "/ip4/1.2.3.4/udp/1/quic")}}, ErrMalformed},
		{"too many entries", []Node{{ID: id, Addrs: mas(t, many(MaxEntries+1)...)}}, ErrMalformed},
		{"twice", []Node{{ID: id}, {ID: id}}, ErrMalformed},
		{"too many nodes", []Node{{ID: testID(t, 1)}, {ID: testID(t, 2)}, {ID: testID(t, 3)}, {ID: testID(t, 4)}}, ErrMalformed},
	} {
		if _, err := Encode(tc.nodes); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A /p2p suffix is allowed and dropped.
	enc, err := Encode([]Node{{ID: id, Addrs: mas(t, "/ip4/1.2.3.4/tcp/1/p2p/"+id.String())}})
	if err != nil || len(enc) != 39 {
		t.Fatalf("address with /p2p: %d bytes, %v", len(enc), err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode([]Node{{ID: testID(t, 1), Addrs: mas(t, "/ip4/1.2.3.4/tcp/4001")}})
	if err != nil {
		t.Fatal(err)
	}
	key2, _ := nodeKey(testID(t, 2))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "a node key alone"},
		{"short key", good[:31], "a node key alone"},
		{"cut address", good[:len(good)-1], "cut short"},
		{"unknown type", cat(good[:32], []byte{0x05, 1, 2}), "unknown element type"},
		{"unknown transport", cat(good[:32], []byte{0x14, 1, 2, 3, 4, 0, 1}), "unknown element type"},
		{"port 0", cat(good[:32], []byte{0x11, 1, 2, 3, 4, 0, 0}), "not usable"},
		{"unspecified", cat(good[:32], []byte{0x11, 0, 0, 0, 0, 0, 1}), "not usable"},
		{"mapped", cat(good[:32], []byte{0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 0, 1}), "not usable"},
		{"address twice", cat(good, good[32:]), "named twice"},
		{"node twice", cat(good, []byte{0x01}, good[:32]), "named twice"},
		{"cut node", cat(good, []byte{0x01}, key2[:10]), "cut short"},
		{"cut extension", cat(good, []byte{0x80, 5, 1}), "cut short"},
		{"too long", bytes.Repeat([]byte{0}, MaxBytes+1), "at most"},
		{"too many nodes", cat(good[:32], []byte{1}, key2, []byte{1}, mustKey(t, 3), []byte{1}, mustKey(t, 4)), "more than 3 nodes"},
		{"too many entries", cat(good[:32], entriesOf(t, MaxEntries+1)), "more than 4 address entries"},
	} {
		_, err := Decode(tc.b)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrMalformed saying %q", tc.name, err, tc.want)
		}
	}
	// Extensions are skipped, wherever they are.
	ext := cat(good, []byte{0x80, 3, 9, 9, 9, 0xff, 0})
	dec, err := Decode(ext)
	if err != nil || len(dec) != 1 || len(dec[0].Addrs) != 1 {
		t.Fatalf("hint with extensions: %v %v", dec, err)
	}
}

func mustKey(t *testing.T, b byte) []byte {
	k, err := nodeKey(testID(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func entriesOf(t *testing.T, n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, 0x11, 10, 0, 0, byte(i+1), 0, 1)
	}
	return b
}

func TestPick(t *testing.T) {
	id := testID(t, 5)
	all := mas(t,
		"/ip4/127.0.0.1/tcp/4001",
		"/ip6/::1/tcp/4001",
		"/ip4/192.168.1.20/udp/4001/quic-v1",
		"/ip6/fe80::1/tcp/4001",
		"/ip6/2001:db8::5/tcp/4001",
		"/dns4/home.example/tcp/4001",
		"/ip4/192.168.1.20/tcp/4001",
		"/ip4/203.0.113.7/tcp/31000",
		"/ip4/100.64.3.3/tcp/4001",
		"/ip6/fd00::5/tcp/4001",
	)
	n, err := Pick(id, all, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := mas(t, "/ip4/203.0.113.7/tcp/31000", "/ip4/192.168.1.20/tcp/4001", "/ip4/192.168.1.20/udp/4001/quic-v1")
	if !sameNodes([]Node{n}, []Node{{ID: id, Addrs: want}}) {
		t.Fatalf("picked %v", n.Addrs)
	}
	n, _ = Pick(id, all, 10)
	if len(n.Addrs) != 5 || !n.Addrs[4].Equal(multiaddr.StringCast("/ip6/2001:db8::5/tcp/4001")) {
		t.Fatalf("picked %v: want the 4 best entries, loopback left out", n.Addrs)
	}
	n, _ = Pick(id, mas(t, "/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"), 2)
	if len(n.Addrs) != 2 {
		t.Fatalf("loopback only: picked %v", n.Addrs)
	}
	n, _ = Pick(id, nil, 2)
	if n.ID != id || len(n.Addrs) != 0 {
		t.Fatalf("no address: %v", n)
	}
	if _, err := Encode([]Node{n}); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode: Decode never panics, stays in its bounds, and what it
// accepts encodes back to a hint that decodes to the same nodes.
func FuzzDecode(f *testing.F) {
	good, _ := Encode([]Node{
		{ID: testID(f, 7), Addrs: mas(f, "/ip4/192.168.178.23/tcp/4001", "/ip4/192.168.178.23/udp/4001/quic-v1")},
		{ID: testID(f, 9), Addrs: mas(f, "/ip6/2001:db8::1/tcp/4001")},
	})
	f.Add(good)
	f.Add(good[:32])
	f.Add(append(bytes.Clone(good), 0x80, 1, 0))
	f.Add(bytes.Repeat([]byte{0x11}, 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(nodes) == 0 || len(nodes) > MaxNodes {
			t.Fatalf("%d nodes", len(nodes))
		}
		for _, n := range nodes {
			if len(n.Addrs) > 2*MaxEntries {
				t.Fatalf("%d addresses", len(n.Addrs))
			}
		}
		enc, err := Encode(nodes)
		if err != nil {
			t.Fatalf("decoded %v but cannot encode it: %v", nodes, err)
		}
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		again, err := Decode(enc)
		if err != nil || !sameNodes(again, nodes) {
			t.Fatalf("round trip: %v, %v != %v", err, again, nodes)
		}
	})
}
