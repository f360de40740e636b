package provisioning

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	ma "github.com/multiformats/go-multiaddr"
	qrcode "github.com/skip2/go-qrcode"
)

// typicalURI is a node with one LAN IPv4 address, the usual case.
func typicalURI() URI {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	u := URI{NodeKey: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)}
	for i := range u.Token {
		u.Token[i] = byte(0xA0 + i)
	}
	u.Addrs = []Addr{{TCP, netip.MustParseAddrPort("192.168.178.23:4001")}}
	return u
}

func TestURIRoundTrip(t *testing.T) {
	u := typicalURI()
	u.Addrs = append(u.Addrs, Addr{QUIC, netip.MustParseAddrPort("[2001:db8::1]:4001")})
	s := u.String()
	for _, in := range []string{s, strings.ToLower(s)} {
		got, err := ParseURI(in)
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", in, err)
		}
		if got.String() != s {
			t.Fatalf("round trip %q -> %q", s, got.String())
		}
	}
	if want := "/ip6/2001:db8::1/udp/4001/quic-v1"; u.Addrs[1].Multiaddr().String() != want {
		t.Errorf("multiaddr %s, want %s", u.Addrs[1].Multiaddr(), want)
	}
}

func TestParseURIErrors(t *testing.T) {
	good := typicalURI().String()
	key, tok := strings.Split(strings.TrimPrefix(good, URIScheme), "/")[0], strings.Split(good, "/")[1]
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"wrong scheme", "RPPAIR2:" + strings.TrimPrefix(good, URIScheme)},
		{"no scheme", strings.TrimPrefix(good, URIScheme)},
		{"missing address field", URIScheme + key + "/" + tok},
		{"empty address", URIScheme + key + "/" + tok + "/"},
		{"extra field", good + "/X"},
		{"short key", URIScheme + key[1:] + "/" + tok + "/T1.2.3.4:1"},
		{"key with padding", URIScheme + key + "====/" + tok + "/T1.2.3.4:1"},
		{"non-canonical key tail", URIScheme + key[:51] + "7/" + tok + "/T1.2.3.4:1"},
		{"bad base32 letter", URIScheme + "1" + key[1:] + "/" + tok + "/T1.2.3.4:1"},
		{"short token", URIScheme + key + "/" + tok[2:] + "/T1.2.3.4:1"},
		{"unknown transport", URIScheme + key + "/" + tok + "/U1.2.3.4:1"},
		{"no port", URIScheme + key + "/" + tok + "/T1.2.3.4"},
		{"port zero", URIScheme + key + "/" + tok + "/T1.2.3.4:0"},
		{"port too big", URIScheme + key + "/" + tok + "/T1.2.3.4:65536"},
		{"port leading zero", URIScheme + key + "/" + tok + "/T1.2.3.4:0080"},
		{"ipv4 leading zero", URIScheme + key + "/" + tok + "/T1.2.3.04:80"},
		{"ipv6 without brackets", URIScheme + key + "/" + tok + "/T2001:DB8::1:80"},
		{"ipv4 in brackets", URIScheme + key + "/" + tok + "/T[1.2.3.4]:80"},
		{"ipv6 zone", URIScheme + key + "/" + tok + "/T[FE80::1%ETH0]:80"},
		{"unspecified", URIScheme + key + "/" + tok + "/T0.0.0.0:80"},
		{"empty second address", good + "+"},
		{"too many addresses", good + strings.Repeat("+T1.2.3.4:1", MaxURIAddrs)},
		{"space", good + " "},
		{"non-ASCII", good + "é"},
		{"too long", good + strings.Repeat("+T1.2.3.4:1", 60)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseURI(tc.in); !errors.Is(err, ErrBadURI) {
				t.Fatalf("ParseURI(%q) = %v, want ErrBadURI", tc.in, err)
			}
		})
	}
}

func TestPickAddrs(t *testing.T) {
	addrs := []string{
		"/ip4/127.0.0.1/tcp/4001", "/ip6/fe80::1/tcp/4001", "/ip4/192.168.178.23/udp/4001/quic-v1",
		"/ip4/192.168.178.23/tcp/4001", "/ip4/172.17.0.1/tcp/4001", "/ip4/203.0.113.9/tcp/4001",
		"/dns4/example.com/tcp/4001", "/ip6/2001:db8::1/tcp/4001",
	}
	n := startNode(t, "", nil, Config{Addrs: func() []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range addrs {
			out = append(out, ma.StringCast(s))
		}
		return out
	}})
	s := n.uri(t)
	u, err := ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	// The LAN TCP address leads; what follows fits the budget.
	if len(u.Addrs) == 0 || u.Addrs[0].String() != "T192.168.178.23:4001" || len(s) > 122 {
		t.Fatalf("URI %q (%d chars)", s, len(s))
	}
	for _, a := range u.Addrs {
		if a.AddrPort.Addr().IsLoopback() || a.AddrPort.Addr().IsLinkLocalUnicast() {
			t.Errorf("URI advertises %s", a)
		}
	}
	t.Logf("URI (%d chars): %s", len(s), s)
}

// TestQRFitsTerminal: the typical URI's QR, in half blocks with its quiet
// zone, fits an 80x24 console.
func TestQRFitsTerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		uri  string
	}{
		{"typical", typicalURI().String()},
		{"at budget", func() string {
			u := typicalURI()
			u.Addrs = []Addr{{TCP, netip.MustParseAddrPort("10.0.0.1:4001")}}
			for len(u.String())+len("+Q10.0.0.1:4001") <= 122 {
				u.Addrs = append(u.Addrs, Addr{QUIC, netip.MustParseAddrPort("10.0.0.1:4001")})
			}
			return u.String()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := QRTerminal(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			width := 0
			for _, l := range lines {
				width = max(width, utf8.RuneCountInString(l))
			}
			q, _ := qrcode.New(tc.uri, QRLevel)
			t.Logf("%d-char URI: QR version %d, %d columns x %d rows", len(tc.uri), q.VersionNumber, width, len(lines))
			if len(lines) > 24 || width > 80 {
				t.Fatalf("QR is %d x %d, does not fit 80x24", width, len(lines))
			}
		})
	}
}

func TestQRPNGDecodes(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (apt-get install zbar-tools, or make test-deps): cannot decode the PNG")
	}
	uri := typicalURI().String()
	png, err := QRPNG(uri, 320)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "-q", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	got := strings.TrimSpace(string(out))
	if got != "QR-Code:"+uri {
		t.Fatalf("zbarimg read %q, want %q", got, "QR-Code:"+uri)
	}
	if _, err := ParseURI(strings.TrimPrefix(got, "QR-Code:")); err != nil {
		t.Fatal(err)
	}
}
