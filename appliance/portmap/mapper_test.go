package portmap

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/p2p"
)

var quiet = slog.New(slog.DiscardHandler)

var nodePorts = []Port{{"TCP", 4001}, {"UDP", 4001}}

func startMapper(t *testing.T, g *testIGD, cfg Config) *Mapper {
	t.Helper()
	cfg.GatewayURL = g.url()
	if cfg.Ports == nil {
		cfg.Ports = nodePorts
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 100 * time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	}
	cfg.CallTimeout = 2 * time.Second
	cfg.Logger = quiet
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(func() { m.Close() })
	return m
}

// waitFor polls cond until it holds; the bound only stops a broken test
// from hanging, it is not what is asserted.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusIs(m *Mapper, s Status) func() bool {
	return func() bool { return m.Diagnosis().Status == s }
}

func TestMapsOnEachServiceType(t *testing.T) {
	for _, svc := range []string{"WANIPConnection:2", "WANIPConnection:1", "WANPPPConnection:1"} {
		t.Run(svc, func(t *testing.T) {
			g := newTestIGD(t, svc)
			m := startMapper(t, g, Config{})
			waitFor(t, "mapped", statusIs(m, StatusMapped))
			for _, p := range nodePorts {
				got, ok := g.mapping(p.Protocol, 4001)
				if !ok {
					t.Fatalf("router has no %s 4001 mapping", p.Protocol)
				}
				if got.desc != Description || got.lease != 3600 || got.client != "127.0.0.1" || got.internalPort != 4001 {
					t.Fatalf("mapping %+v", got)
				}
			}
			d := m.Diagnosis()
			if d.ExternalIP.String() != "203.0.113.7" || len(d.Leases) != 2 || d.Hint == "" {
				t.Fatalf("diagnosis %+v", d)
			}
			if !strings.Contains(d.String(), "mapped external 203.0.113.7 tcp/4001->4001") {
				t.Fatalf("status line %q", d.String())
			}
			m.Close()
			if n := g.count(); n != 0 {
				t.Fatalf("%d mappings left after Close", n)
			}
		})
	}
}

func TestRenewsLeaseInPlace(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:2")
	m := startMapper(t, g, Config{Lease: 2 * time.Second})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	first := m.Leases()[0]
	waitFor(t, "two renewals", func() bool { return g.addCount("TCP", 4001) >= 3 })
	l := m.Leases()[0]
	if l.ExternalPort != first.ExternalPort || !l.Renewed.After(first.Renewed) {
		t.Fatalf("lease %+v after renewal of %+v", l, first)
	}
	if got, ok := g.mapping("TCP", 4001); !ok || got.lease != 2 {
		t.Fatalf("router mapping %+v %v", got, ok)
	}
}

func TestPermanentOnlyRouter(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:1")
	g.permanentOnly = true
	m := startMapper(t, g, Config{})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	for _, l := range m.Leases() {
		if l.Duration != 0 || !l.Expires().IsZero() {
			t.Fatalf("lease %+v, want permanent", l)
		}
	}
	if got, ok := g.mapping("UDP", 4001); !ok || got.lease != 0 {
		t.Fatalf("router mapping %+v %v", got, ok)
	}
	m.Close()
	if g.count() != 0 {
		t.Fatal("permanent mappings not removed on Close")
	}
}

func TestRefusalIsDiagnosed(t *testing.T) {
	tests := []struct {
		name string
		code int
	}{{"not authorized", 606}, {"action failed", 501}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestIGD(t, "WANIPConnection:2")
			g.refuseCode = tc.code
			m := startMapper(t, g, Config{})
			waitFor(t, "refused", statusIs(m, StatusRefused))
			d := m.Diagnosis()
			if d.UPnPCode != tc.code || d.UPnPText == "" || len(d.Leases) != 0 || !strings.Contains(d.Hint, "router") {
				t.Fatalf("diagnosis %+v", d)
			}
			if g.count() != 0 {
				t.Fatal("router has mappings")
			}
		})
	}
}

func TestCGNATAndDoubleNATDetected(t *testing.T) {
	tests := []struct {
		ext  string
		want Status
	}{
		{"100.64.3.4", StatusCGNAT},
		{"100.127.255.1", StatusCGNAT},
		{"10.0.0.2", StatusCGNAT},
		{"172.20.1.1", StatusCGNAT},
		{"192.168.1.1", StatusCGNAT},
		{"0.0.0.0", StatusNoWANAddress},
		{"", StatusNoWANAddress},
		{"100.128.0.1", StatusMapped},
		{"198.51.100.20", StatusMapped},
	}
	for _, tc := range tests {
		t.Run(tc.ext, func(t *testing.T) {
			g := newTestIGD(t, "WANIPConnection:2")
			g.externalIP = tc.ext
			m := startMapper(t, g, Config{})
			waitFor(t, tc.want.String(), statusIs(m, tc.want))
			d := m.Diagnosis()
			if tc.want == StatusCGNAT && !strings.Contains(d.Hint, "carrier-grade") {
				t.Fatalf("hint %q", d.Hint)
			}
			// The router still took the mapping; only the advertised
			// address must not be used.
			if len(d.Leases) != 2 {
				t.Fatalf("leases %+v", d.Leases)
			}
		})
	}
}

func TestRouterDisappearsAndComesBack(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:2")
	m := startMapper(t, g, Config{})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	g.stop()
	waitFor(t, "gateway lost", statusIs(m, StatusNoGateway))
	if !strings.Contains(m.Diagnosis().Hint, "UPnP") {
		t.Fatalf("hint %q", m.Diagnosis().Hint)
	}
	g.reboot() // same address, empty mapping table
	waitFor(t, "mapped again", func() bool {
		_, tcp := g.mapping("TCP", 4001)
		_, udp := g.mapping("UDP", 4001)
		return tcp && udp && m.Diagnosis().Status == StatusMapped
	})
}

func TestMappingRecreatedWhenRouterForgetsIt(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:2")
	m := startMapper(t, g, Config{})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	g.mu.Lock()
	clear(g.mappings) // a reboot faster than our check interval
	g.mu.Unlock()
	waitFor(t, "re-created", func() bool { _, ok := g.mapping("TCP", 4001); return ok })
}

func TestExternalPortKeptAcrossRestarts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "portmap.json")
	g := newTestIGD(t, "WANIPConnection:1")
	g.taken = []uint16{4001} // someone else holds 4001 on the router
	m := startMapper(t, g, Config{StateFile: state, Ports: []Port{{"TCP", 4001}}})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	ext := m.Leases()[0].ExternalPort
	if ext == 4001 {
		t.Fatal("took a port the router said was taken")
	}
	m.Close()
	if g.count() != 0 {
		t.Fatal("not removed on Close")
	}

	m2 := startMapper(t, g, Config{StateFile: state, Ports: []Port{{"TCP", 4001}}})
	waitFor(t, "mapped", statusIs(m2, StatusMapped))
	if got := m2.Leases()[0].ExternalPort; got != ext {
		t.Fatalf("external port %d after restart, want %d", got, ext)
	}
	if n := g.addCount("TCP", 4001); n != 1 {
		t.Fatalf("restart asked for 4001 again (%d calls); it should ask for the kept port first", n)
	}
}

func TestCorruptStateFileIsNotFatal(t *testing.T) {
	state := filepath.Join(t.TempDir(), "portmap.json")
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(state); err == nil || !strings.Contains(err.Error(), state) {
		t.Fatalf("loadState error %v should name the file", err)
	}
	g := newTestIGD(t, "WANIPConnection:2")
	m := startMapper(t, g, Config{StateFile: state})
	waitFor(t, "mapped", statusIs(m, StatusMapped))
	if s, err := loadState(state); err != nil || s.ExternalPorts["TCP/4001"] != 4001 {
		t.Fatalf("state not rewritten: %+v %v", s, err)
	}
}

func TestNoGatewayAtAll(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:2")
	g.stop() // nothing listens at the URL
	m := startMapper(t, g, Config{})
	waitFor(t, "no gateway", statusIs(m, StatusNoGateway))
	if d := m.Diagnosis(); !strings.Contains(d.Detail, "rootDesc.xml") {
		t.Fatalf("detail %q", d.Detail)
	}
}

func TestLibp2pNATManagerAdapter(t *testing.T) {
	g := newTestIGD(t, "WANIPConnection:2")
	m := startMapper(t, g, Config{Ports: []Port{}})
	h, err := p2p.New(p2p.Config{
		DataDir:     t.TempDir(),
		ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		NATManager:  m.NATManager,
		Logger:      quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var tcpPort uint16
	for _, a := range h.Network().ListenAddresses() {
		if p, ok := portOf(a); ok {
			tcpPort = p.Internal
		}
	}
	if tcpPort == 0 {
		t.Fatalf("no mappable listen address in %v", h.Network().ListenAddresses())
	}
	waitFor(t, "host's TCP port mapped", func() bool { _, ok := g.mapping("TCP", tcpPort); return ok })
	waitFor(t, "status mapped", statusIs(m, StatusMapped))
	// Loopback QUIC is not mappable, so only TCP is on the router.
	if g.count() != 1 {
		t.Fatalf("router has %d mappings, want 1", g.count())
	}
	want := "/ip4/203.0.113.7/tcp/" + strconv.Itoa(int(tcpPort))
	waitFor(t, "host advertises "+want, func() bool {
		for _, a := range h.Addrs() {
			if a.String() == want {
				return true
			}
		}
		return false
	})
	// A listen address that is not mapped gets nothing.
	if got := m.NATManager(h.Network()).GetMapping(ma.StringCast("/ip4/0.0.0.0/tcp/9")); got != nil {
		t.Fatalf("unmapped port got %s", got)
	}
}

func TestConfigRejected(t *testing.T) {
	tests := []Config{
		{Ports: []Port{{"SCTP", 1}}},
		{Ports: []Port{{"TCP", 0}}},
		{Lease: time.Millisecond},
	}
	for _, c := range tests {
		if _, err := New(c); err == nil {
			t.Fatalf("New(%+v) accepted", c)
		}
	}
	var ue *UPnPError = &UPnPError{Code: 718}
	if !errors.Is(ue, ErrRefused) {
		t.Fatal("UPnPError is not ErrRefused")
	}
}
