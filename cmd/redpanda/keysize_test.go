package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
)

// TestKeyStringSizes prints the size of a key string and of the QR code
// `channel share --qr` draws for it (error correction L, half-block
// characters, 4-module quiet zone) with hints of 0, 1 and 2 address
// entries, and checks the case that matters most: a full key with its
// home node on one address stays a version-5 code, and that zbarimg (when
// installed) reads every one back.
//
//	go test ./cmd/redpanda -run TestKeyStringSizes -v
func TestKeyStringSizes(t *testing.T) {
	full, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	read, _ := full.ReadOnly()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pk, _ := crypto.UnmarshalEd25519PrivateKey(priv)
	id, _ := peer.IDFromPrivateKey(pk)
	addrs := func(ss ...string) []multiaddr.Multiaddr {
		var out []multiaddr.Multiaddr
		for _, s := range ss {
			out = append(out, multiaddr.StringCast(s))
		}
		return out
	}
	cases := []struct {
		name  string
		nodes []hint.Node
	}{
		{"no hint", nil},
		{"peer ID only", []hint.Node{{ID: id}}},
		{"1 address (TCP+QUIC on 192.168.1.20:4001)", []hint.Node{{ID: id, Addrs: addrs("/ip4/192.168.1.20/tcp/4001", "/ip4/192.168.1.20/udp/4001/quic-v1")}}},
		{"2 addresses (public + LAN IPv4)", []hint.Node{{ID: id, Addrs: addrs("/ip4/203.0.113.7/tcp/4001", "/ip4/192.168.1.20/tcp/4001")}}},
		{"1 IPv6 address", []hint.Node{{ID: id, Addrs: addrs("/ip6/2001:db8::7/tcp/4001")}}},
	}
	for _, k := range []*channel.Key{full, read} {
		for _, c := range cases {
			var h []byte
			if c.nodes != nil {
				if h, err = hint.Encode(c.nodes); err != nil {
					t.Fatal(err)
				}
			}
			s, err := k.StringWithHint(h)
			if err != nil {
				t.Fatal(err)
			}
			q, err := qrcode.New(s, qrcode.Low)
			if err != nil {
				t.Fatal(err)
			}
			modules := 17 + 4*q.VersionNumber
			rows := len(strings.Split(strings.TrimRight(q.ToSmallString(false), "\n"), "\n"))
			t.Logf("%-4s key, %-42s hint %3d B, string %3d chars, QR version %d (%d modules, %d terminal rows)",
				k.Capability(), c.name, len(h), len(s), q.VersionNumber, modules, rows)
			if k == full && strings.HasPrefix(c.name, "1 address") && q.VersionNumber > 5 {
				t.Errorf("a full key with a one-address hint needs QR version %d (%d chars); it fitted version 5", q.VersionNumber, len(s))
			}
			scanned(t, q, s)
		}
	}
}

// scanned decodes q with zbarimg, when it is installed, and checks it
// reads back s: the hinted key strings stay scannable.
func scanned(t *testing.T, q *qrcode.QRCode, s string) {
	t.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		return
	}
	png := filepath.Join(t.TempDir(), "key.png")
	if err := q.WriteFile(320, png); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "-q", "--raw", png).Output()
	if err != nil {
		t.Fatalf("zbarimg cannot read the QR code of a %d-character key string: %v", len(s), err)
	}
	if got := strings.TrimSpace(string(out)); got != s {
		t.Fatalf("zbarimg read %q, the key string is %q", got, s)
	}
}
