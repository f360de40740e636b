package portmap

import (
	"net/netip"
	"testing"
)

// TestDiagnosisWords: each status has its phrase for the status page, and
// the external address is the router's with the TCP lease's port.
func TestDiagnosisWords(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.7")
	cgn := netip.MustParseAddr("100.64.1.2")
	leases := []Lease{{Protocol: "UDP", ExternalPort: 4002}, {Protocol: "TCP", ExternalPort: 4001}}
	for _, c := range []struct {
		d            Diagnosis
		summary, ext string
	}{
		{Diagnosis{Status: StatusMapped, ExternalIP: ip, Leases: leases}, "reachable via UPnP", "203.0.113.7:4001"},
		{Diagnosis{Status: StatusStarting}, "looking for the router", ""},
		{Diagnosis{Status: StatusNoGateway}, "no UPnP router", ""},
		{Diagnosis{Status: StatusRefused, UPnPCode: 718, UPnPText: "ConflictInMappingEntry"},
			"router refused port mapping (UPnP error 718 ConflictInMappingEntry)", ""},
		{Diagnosis{Status: StatusNoWANAddress}, "router has no usable internet address", ""},
		{Diagnosis{Status: StatusCGNAT, ExternalIP: cgn}, "behind carrier-grade or double NAT", "100.64.1.2"},
		{Diagnosis{Status: Status(42)}, "status(42)", ""},
	} {
		if got := c.d.Summary(); got != c.summary {
			t.Errorf("%s: Summary %q, want %q", c.d.Status, got, c.summary)
		}
		if got := c.d.ExternalAddr(); got != c.ext {
			t.Errorf("%s: ExternalAddr %q, want %q", c.d.Status, got, c.ext)
		}
	}
}
