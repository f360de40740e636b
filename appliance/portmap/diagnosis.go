package portmap

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Status is the outcome of port mapping, in the order the owner must act on.
type Status int

const (
	// StatusStarting: no answer from the network yet.
	StatusStarting Status = iota
	// StatusNoGateway: no UPnP router answered.
	StatusNoGateway
	// StatusRefused: the router answered and refused to map a port.
	StatusRefused
	// StatusNoWANAddress: the router reports no usable internet address:
	// it is offline, or (as miniupnpd does) it withholds a private one.
	StatusNoWANAddress
	// StatusCGNAT: the router's own internet address is private or
	// carrier-grade (100.64.0.0/10): there is another NAT above it, so the
	// mapping does not make the node reachable.
	StatusCGNAT
	// StatusMapped: every port is mapped and the external address is public.
	StatusMapped
)

func (s Status) String() string {
	switch s {
	case StatusStarting:
		return "starting"
	case StatusNoGateway:
		return "no-gateway"
	case StatusRefused:
		return "refused"
	case StatusNoWANAddress:
		return "no-wan-address"
	case StatusCGNAT:
		return "cgnat"
	case StatusMapped:
		return "mapped"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Diagnosis is what the status page, `homenode status` and systemd STATUS=
// show about reachability.
type Diagnosis struct {
	Status Status
	// Gateway names the router's service and description URL, if found.
	Gateway string
	// ExternalIP is what the router says its internet address is.
	ExternalIP netip.Addr
	// Leases are the mappings in force.
	Leases []Lease
	// UPnPCode and UPnPText are the router's refusal (StatusRefused).
	UPnPCode int
	UPnPText string
	// Detail is the underlying error text, for logs.
	Detail string
	// Hint says in plain language what the owner can do.
	Hint string
	// Since is when this status began.
	Since time.Time
}

// String is one line, short enough for systemd's STATUS=.
func (d Diagnosis) String() string {
	var b strings.Builder
	b.WriteString("upnp: ")
	b.WriteString(d.Status.String())
	switch d.Status {
	case StatusRefused:
		fmt.Fprintf(&b, " (UPnP error %d %s)", d.UPnPCode, d.UPnPText)
	case StatusMapped, StatusCGNAT:
		fmt.Fprintf(&b, " external %s", d.ExternalIP)
		for _, l := range d.Leases {
			fmt.Fprintf(&b, " %s/%d->%d", strings.ToLower(l.Protocol), l.ExternalPort, l.InternalPort)
		}
	}
	return b.String()
}

// hints are the owner-facing explanations, one per status.
var hints = map[Status]string{
	StatusStarting: "Looking for the home router; this takes a few seconds.",
	StatusNoGateway: "No router answered UPnP requests. Turn on UPnP (sometimes called " +
		"\"automatic port forwarding\" or \"UPnP IGD\") in the router's settings, or forward " +
		"the ports shown here by hand. Until then friends reach this node through a relay.",
	StatusRefused: "The router answered but would not open the port. In the router's UPnP " +
		"settings allow this device to add port mappings (some routers only allow ports " +
		"above 1024 or need \"secure mode\" off), or forward the ports by hand.",
	StatusNoWANAddress: "The router reports no usable internet address. Either it is offline " +
		"(check its internet light), or its own address is a private or carrier-grade one that " +
		"it will not hand out, meaning another router or the provider's NAT sits in front of it: " +
		"put the provider's box in bridge mode or ask for a public IPv4 address. The node " +
		"retries by itself and stays reachable through relays meanwhile.",
	StatusCGNAT: "The router's own internet address is a private or carrier-grade one, so " +
		"there is another router or the provider's NAT in front of it and ports opened here " +
		"do not reach this node. Put the provider's box in bridge mode, ask the provider for " +
		"a public IPv4 address, or rely on IPv6 and the relay.",
	StatusMapped: "The ports are open on the router; friends can reach this node directly.",
}

// Summary is the diagnosis as the status page's short phrase; Hint is
// its longer advice.
func (d Diagnosis) Summary() string {
	switch d.Status {
	case StatusMapped:
		return "reachable via UPnP"
	case StatusStarting:
		return "looking for the router"
	case StatusNoGateway:
		return "no UPnP router"
	case StatusRefused:
		return fmt.Sprintf("router refused port mapping (UPnP error %d %s)", d.UPnPCode, d.UPnPText)
	case StatusNoWANAddress:
		return "router has no usable internet address"
	case StatusCGNAT:
		return "behind carrier-grade or double NAT"
	}
	return d.Status.String()
}

// ExternalAddr is where the router says friends reach the node: its
// internet address with the first TCP lease's external port, the address
// alone without one, or "" when the router gave no address.
func (d Diagnosis) ExternalAddr() string {
	if !d.ExternalIP.IsValid() {
		return ""
	}
	for _, l := range d.Leases {
		if l.Protocol == "TCP" {
			return net.JoinHostPort(d.ExternalIP.String(), fmt.Sprint(l.ExternalPort))
		}
	}
	return d.ExternalIP.String()
}

// OffSummary and OffHint are what the status page says when port mapping
// is turned off and there is no Mapper.
const (
	OffSummary = "UPnP off"
	OffHint    = "Port mapping is turned off (upnp = false); forward the node's ports on the router by hand, or friends reach it only through a relay."
)

// cgnatPrefix is the shared address space of RFC 6598.
var cgnatPrefix = netip.MustParsePrefix("100.64.0.0/10")

// classifyExternal parses the router's answer to GetExternalIPAddress (bytes
// from the network) and says whether it makes the node reachable.
func classifyExternal(s string) (netip.Addr, Status) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !ip.IsValid() || ip.IsUnspecified() {
		return netip.Addr{}, StatusNoWANAddress
	}
	ip = ip.Unmap()
	if ip.IsPrivate() || cgnatPrefix.Contains(ip) || ip.IsLoopback() ||
		ip.IsLinkLocalUnicast() || !ip.IsGlobalUnicast() {
		return ip, StatusCGNAT
	}
	return ip, StatusMapped
}
