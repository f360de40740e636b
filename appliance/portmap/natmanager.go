package portmap

import (
	"net"
	"strconv"

	"github.com/libp2p/go-libp2p/core/network"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// NATManager adapts the Mapper to libp2p's basichost.NATManager so that the
// host advertises the mapped external addresses, and the Mapper (not
// libp2p's own UPnP client) owns the mappings. Use it as
// libp2p.NATManager(m.NATManager), or p2p.Config{NATManager: m.NATManager}.
//
// The adapter sets the Mapper's ports from the host's IPv4 TCP and UDP listen
// addresses and follows them as listeners open and close. Closing it (the
// host does on Close) stops following; the mappings stay until Mapper.Close,
// because the appliance, not the host, decides when the node goes away.
func (m *Mapper) NATManager(n network.Network) basichost.NATManager {
	a := &natAdapter{m: m, net: n}
	n.Notify(a)
	a.syncPorts()
	return a
}

type natAdapter struct {
	m   *Mapper
	net network.Network
}

var _ basichost.NATManager = (*natAdapter)(nil)

func (a *natAdapter) syncPorts() {
	seen := map[string]bool{}
	var ports []Port
	for _, addr := range a.net.ListenAddresses() {
		p, ok := portOf(addr)
		if ok && !seen[p.key()] {
			seen[p.key()] = true
			ports = append(ports, p)
		}
	}
	if err := a.m.SetPorts(ports...); err != nil {
		a.m.log.Warn("cannot map listen ports", "err", err)
	}
}

// portOf extracts the port a router could forward to from a listen address:
// IPv4 (UPnP IGD maps IPv4 only), not loopback or link-local.
func portOf(addr ma.Multiaddr) (Port, bool) {
	if len(addr) < 2 || addr[0].Protocol().Code != ma.P_IP4 {
		return Port{}, false
	}
	ip := net.IP(addr[0].RawValue())
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return Port{}, false
	}
	var proto string
	switch addr[1].Protocol().Code {
	case ma.P_TCP:
		proto = "TCP"
	case ma.P_UDP:
		proto = "UDP"
	default:
		return Port{}, false
	}
	port, err := strconv.ParseUint(addr[1].Value(), 10, 16)
	if err != nil || port == 0 {
		return Port{}, false
	}
	return Port{Protocol: proto, Internal: uint16(port)}, true
}

// GetMapping returns the external address for a listen address, or nil when
// it is not mapped or the router's address is not public (CGNAT): libp2p
// must not advertise an address nobody can reach.
func (a *natAdapter) GetMapping(addr ma.Multiaddr) ma.Multiaddr {
	p, ok := portOf(addr)
	if !ok {
		return nil
	}
	d := a.m.Diagnosis()
	if d.Status != StatusMapped || !d.ExternalIP.Is4() {
		return nil
	}
	for _, l := range d.Leases {
		if l.Protocol != p.Protocol || l.InternalPort != p.Internal {
			continue
		}
		proto := "tcp"
		if p.Protocol == "UDP" {
			proto = "udp"
		}
		ext, err := ma.NewMultiaddr("/ip4/" + d.ExternalIP.String() + "/" + proto + "/" + strconv.Itoa(int(l.ExternalPort)))
		if err != nil {
			return nil
		}
		return ext.Encapsulate(addr[2:])
	}
	return nil
}

// HasDiscoveredNAT reports whether a gateway answered.
func (a *natAdapter) HasDiscoveredNAT() bool {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.m.gw != nil
}

// Close stops following the host's listen addresses; see NATManager.
func (a *natAdapter) Close() error {
	a.net.StopNotify(a)
	return nil
}

func (a *natAdapter) Listen(network.Network, ma.Multiaddr)       { a.syncPorts() }
func (a *natAdapter) ListenClose(network.Network, ma.Multiaddr)  { a.syncPorts() }
func (a *natAdapter) Connected(network.Network, network.Conn)    {}
func (a *natAdapter) Disconnected(network.Network, network.Conn) {}
