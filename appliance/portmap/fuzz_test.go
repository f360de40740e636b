package portmap

import "testing"

// FuzzClassifyExternal: the router's GetExternalIPAddress answer comes from
// the network; any string gives a status and never a public address that
// is in private or carrier-grade space.
func FuzzClassifyExternal(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "100.64.0.1", "10.1.2.3", "", "0.0.0.0", "::1", "fe80::1", " 1.2.3.4 ", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, st := classifyExternal(s)
		if st == StatusMapped && (ip.IsPrivate() || cgnatPrefix.Contains(ip) || !ip.IsGlobalUnicast()) {
			t.Fatalf("%q classified public: %s", s, ip)
		}
		if st != StatusMapped && st != StatusCGNAT && st != StatusNoWANAddress {
			t.Fatalf("%q: status %s", s, st)
		}
	})
}
