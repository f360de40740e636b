package p2p

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/internal/sockowner"
)

// One node per port. libp2p's TCP transport listens with SO_REUSEPORT (so
// that it can dial from its listen port, which helps NAT hole punching),
// so a second node on the same port listens too and the kernel splits
// incoming connections between the two at random; and libp2p starts as
// long as one listener came up, so a QUIC port in use is only a log line.
// New therefore (1) binds every fixed port exclusively for a moment
// before the host listens, (2) checks after libp2p.New that every
// configured address is among Network().ListenAddresses(), and (3) checks
// in /proc/net that no other process listens on a fixed TCP port through
// SO_REUSEPORT (two nodes started at the same moment both pass step 1).
// Reuseport stays on for dialing.

// ListenError says that a configured listener did not come up, and why.
// It matches ErrListen, and syscall.EADDRINUSE when the port is in use.
type ListenError struct {
	// Addr is the configured multiaddr.
	Addr string
	// Port is "4001/tcp" or "4001/udp"; empty for an address without one.
	Port string
	// Holder names who holds the port (sockowner.Describe) when it is in
	// use, else empty.
	Holder string
	// Err is the cause.
	Err error
}

func (e *ListenError) Error() string {
	if e.Holder != "" {
		return fmt.Sprintf("listen %s: port %s is in use by %s", e.Addr, e.Port, e.Holder)
	}
	return fmt.Sprintf("listen %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() []error { return []error{ErrListen, e.Err} }

// listenAddr is one configured listen address with its socket address.
type listenAddr struct {
	ma      ma.Multiaddr
	network string // "tcp4", "tcp6", "udp4", "udp6"; "" when not IP/TCP or IP/UDP
	ip      net.IP
	port    int
}

func parseListenAddrs(addrs []string) ([]listenAddr, error) {
	out := make([]listenAddr, 0, len(addrs))
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, s, err)
		}
		la := listenAddr{ma: m}
		var fam, proto, ipStr, portStr string
		if v, err := m.ValueForProtocol(ma.P_IP4); err == nil {
			fam, ipStr = "4", v
		} else if v, err := m.ValueForProtocol(ma.P_IP6); err == nil {
			fam, ipStr = "6", v
		}
		if v, err := m.ValueForProtocol(ma.P_TCP); err == nil {
			proto, portStr = "tcp", v
		} else if v, err := m.ValueForProtocol(ma.P_UDP); err == nil {
			proto, portStr = "udp", v
		}
		if fam != "" && proto != "" {
			la.network = proto + fam
			la.ip = net.ParseIP(ipStr)
			la.port, _ = strconv.Atoi(portStr)
		}
		out = append(out, la)
	}
	return out, nil
}

// portName is "4001/tcp".
func (la listenAddr) portName() string {
	if la.network == "" {
		return ""
	}
	return strconv.Itoa(la.port) + "/" + la.network[:3]
}

// probeListeners binds each fixed port exclusively (no SO_REUSEPORT) and
// lets it go again, so that a port another process holds is an error
// before anything starts. Port 0 (any free port) needs no probe. It
// returns the addresses to listen on: an IPv6 address on a kernel without
// IPv6 (booted with ipv6.disable=1) is left out, as the caller should
// log, since no configuration could make it work there.
func probeListeners(addrs []listenAddr) (keep, noFamily []listenAddr, err error) {
	var errs []error
	for _, la := range addrs {
		if la.network == "" {
			keep = append(keep, la)
			continue
		}
		err := probe(la)
		switch {
		case errors.Is(err, syscall.EAFNOSUPPORT):
			noFamily = append(noFamily, la)
		case err != nil && la.port != 0:
			errs = append(errs, err)
		default:
			keep = append(keep, la)
		}
	}
	return keep, noFamily, errors.Join(errs...)
}

func probe(la listenAddr) error {
	hostport := net.JoinHostPort(la.ip.String(), strconv.Itoa(la.port))
	var err error
	if la.network[:3] == "tcp" {
		var l net.Listener
		// Go sets SO_REUSEADDR (a port in TIME_WAIT from the last run is
		// free), never SO_REUSEPORT: a live listener makes this fail.
		if l, err = net.Listen(la.network, hostport); err == nil {
			return l.Close()
		}
	} else {
		var c net.PacketConn
		if c, err = net.ListenPacket(la.network, hostport); err == nil {
			return c.Close()
		}
	}
	return listenError(la, err)
}

// listenError wraps a failed bind, naming the holder when the port is in
// use.
func listenError(la listenAddr, err error) *ListenError {
	e := &ListenError{Addr: la.ma.String(), Port: la.portName(), Err: err}
	if errors.Is(err, syscall.EADDRINUSE) {
		e.Holder = sockowner.Describe(sockowner.Port(la.network[:3], la.port))
	}
	return e
}

// checkListeners says which configured addresses libp2p did not listen
// on, and which fixed TCP ports another process shares with this one.
func checkListeners(h host.Host, addrs []listenAddr) error {
	have := h.Network().ListenAddresses()
	var errs []error
	for _, la := range addrs {
		if !slices.ContainsFunc(have, la.matches) {
			errs = append(errs, missingListener(la))
			continue
		}
		if (la.network != "tcp4" && la.network != "tcp6") || la.port == 0 {
			continue
		}
		if others := sharing(la); len(others) > 0 {
			errs = append(errs, &ListenError{Addr: la.ma.String(), Port: la.portName(),
				Holder: sockowner.Describe(others), Err: syscall.EADDRINUSE})
		}
	}
	return errors.Join(errs...)
}

// missingListener explains why la is not listening: an exclusive bind
// now says why, when it fails (libp2p logs its own reason only).
func missingListener(la listenAddr) error {
	if la.network != "" {
		if err := probe(la); err != nil {
			return err
		}
	}
	return &ListenError{Addr: la.ma.String(), Port: la.portName(),
		Err: errors.New("libp2p did not listen on it (no transport for this address, or it failed; the log says why)")}
}

// sharing lists other processes' listeners on la's TCP port and address
// family whose address overlaps la's: with SO_REUSEPORT both would
// receive connections.
func sharing(la listenAddr) []sockowner.Socket {
	table := "tcp"
	if la.network == "tcp6" {
		table = "tcp6"
	}
	var out []sockowner.Socket
	for _, s := range sockowner.Others("tcp", la.port) {
		if s.Network != table {
			continue
		}
		if s.IP.Equal(la.ip) || s.IP.IsUnspecified() || la.ip.IsUnspecified() {
			out = append(out, s)
		}
	}
	return out
}

// matches reports whether a listen address libp2p reports is la: the
// same protocols and values, any port where la asked for port 0.
func (la listenAddr) matches(have ma.Multiaddr) bool {
	want := la.ma
	if len(want) != len(have) {
		return false
	}
	for i := range want {
		w, h := want[i], have[i]
		if w.Code() != h.Code() {
			return false
		}
		if (w.Code() == ma.P_TCP || w.Code() == ma.P_UDP) && w.Value() == "0" {
			continue
		}
		if w.Value() != h.Value() {
			return false
		}
	}
	return true
}
