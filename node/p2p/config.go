package p2p

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListenAddrs are the listeners of a home node: TCP and QUIC v1 on
// port 4001, IPv4 and IPv6. Port 4001 is what the router maps (see
// appliance/portmap); a fixed port keeps the external address stable.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip6/::/tcp/4001",
	"/ip6/::/udp/4001/quic-v1",
}

// Config says how to build the host. The zero value of every field except
// DataDir means "use the default" written beside it.
type Config struct {
	// DataDir holds the identity file. Required.
	DataDir string
	// IdentityPath is the identity key file. Default: DataDir/identity.key.
	IdentityPath string
	// ListenAddrs are multiaddrs to listen on. Default: DefaultListenAddrs.
	ListenAddrs []string
	// NoListen makes a host that listens on nothing (ListenAddrs must be
	// empty): it only dials out, as a phone does. Such a host never asks
	// the OS for its network interfaces or routes, which Android 11+
	// forbids apps (libp2p resolves only unspecified listen addresses,
	// and picks a QUIC source address only for unicast listeners).
	// Default: false.
	NoListen bool
	// Limits are the resource manager's limits. Default: see Limits.
	Limits Limits
	// ConnMgr are the connection manager's water marks. Default: see ConnMgr.
	ConnMgr ConnMgr

	// NATManager, when set, is given to libp2p.NATManager so that one
	// component (appliance/portmap) owns the router's port mappings.
	// libp2p's own NATPortMap is never enabled by this package. Default: nil
	// (no port mapping).
	NATManager config.NATManagerC

	// Relay enables the circuit v2 relay client transport, so the host can
	// dial and be reached through relays. Default: false.
	Relay bool
	// RelayService lets the host act as a circuit v2 relay for the peers
	// RelayACL approves, within RelayLimits. libp2p starts the service only
	// while AutoNAT says the host is publicly reachable, and stops it when
	// that changes. Requires RelayACL. Default: false.
	RelayService bool
	// RelayACL says whether a peer may hold a slot on this node's relay and
	// be reached through it (the appliance answers from its registrations).
	// It is asked at each reservation, refresh and circuit, from libp2p's
	// goroutines, and must be quick and safe for concurrent use.
	RelayACL func(peer.ID) bool
	// RelayLimits bound the relay service. Default: see RelayLimits.
	RelayLimits RelayLimits

	// StaticRelays are reachable nodes (a friend's home node) this node
	// reserves a slot on while AutoNAT says it is private, so that it stays
	// reachable through /p2p-circuit addresses. Setting it implies Relay.
	// Default: none.
	StaticRelays []peer.AddrInfo
	// RelayPeerSource yields more relay candidates after StaticRelays (the
	// discovery layer fills it later). Setting it implies Relay.
	// Default: nil.
	RelayPeerSource RelayPeerSource
	// Relays is the number of relay reservations sought. Default:
	// DefaultRelays, or len(StaticRelays) when that is smaller and there is
	// no RelayPeerSource.
	Relays int

	// AutoNATv2 enables AutoNAT v2: per-address reachability checks as a
	// client, and answering other nodes' checks as a server. Default: false.
	AutoNATv2 bool
	// AutoNATService answers other nodes' AutoNAT v1 dial-back requests.
	// AutoNAT v1 is what decides the host-wide verdict (public or private)
	// that starts the relay service and the relay client, so reachable
	// nodes should run it for their friends. Default: false.
	AutoNATService bool
	// ForceReachability overrides AutoNAT's verdict (network.ReachabilityPublic
	// or ReachabilityPrivate) for an owner who knows better, and for tests.
	// Default: network.ReachabilityUnknown, which lets AutoNAT decide.
	ForceReachability network.Reachability
	// HolePunching enables DCUtR hole punching; it implies Relay because the
	// punch is coordinated over a relayed connection. Default: false.
	HolePunching bool

	// UserAgent is announced by identify. Default: "redpanda-homenode".
	UserAgent string
	// Metrics receives libp2p and resource manager metrics. Default: nil
	// (metrics disabled, which keeps many hosts in one process independent).
	Metrics prometheus.Registerer
	// Bandwidth, when set, counts the bytes of every stream of the host.
	// Default: nil (not counted).
	Bandwidth *Bandwidth
	// Logger receives this package's logs. Default: slog.Default().
	Logger *slog.Logger

	// Options are libp2p options applied after this package's own. The
	// network simulation (package sim) passes its simulated QUIC network
	// here; a node in the field leaves it empty. With Options, New does
	// not probe ListenAddrs on this system's sockets first (they may be
	// another network's). Default: none.
	Options []libp2p.Option
}

// StreamReserve is what the resource manager accounts for each idle
// client: the sync stream's yamux window (256 KiB, fixed by the yamux
// protocol) and room for its short registration and identify streams.
// The RSS an idle client costs is far less (docs/PERFORMANCE.md).
const StreamReserve = 320 << 10

// Limits are the resource manager limits that matter on a home node. The
// libp2p AutoScale defaults allow ~192 connections on a 4 GB board and 8 per
// IPv4 address, which would turn away a household's phones behind one
// carrier-grade NAT address; these are raised explicitly. Everything not
// listed here keeps libp2p's scaled defaults.
type Limits struct {
	// Conns is the total number of connections. Default: 2560.
	Conns int
	// ConnsInbound is the number of inbound connections. Default: Conns.
	ConnsInbound int
	// ConnsOutbound is the number of outbound connections. Default: 1024.
	ConnsOutbound int
	// Streams is the total number of streams. Default: 16 × Conns.
	Streams int
	// Memory is the bytes libp2p may reserve. yamux reserves its fixed
	// 256 KiB initial window for every stream, and every connected phone
	// holds one (sync) plus short ones (identify, registration), so the
	// accounting, not the RAM, is what runs out first: a node holds about
	// Memory / StreamReserve idle clients. Default: max(512 MiB,
	// Conns × StreamReserve).
	Memory int64
	// FD is the file descriptors libp2p may use (TCP connections; QUIC
	// shares one socket). The systemd unit must allow more (LimitNOFILE).
	// Default: max(4096, Conns + 1024).
	FD int
	// ConnsPerIPv4 is the connections from one IPv4 address (a carrier NAT
	// address can hide many phones). Default: 256.
	ConnsPerIPv4 int
	// ConnsPerIPv6 is the connections from one IPv6 /56 (a household); a /48
	// gets 4 × this. Default: 256.
	ConnsPerIPv6 int
	// NewConnsPerSecondPerIP is the sustained rate of new connections from
	// one IPv4 address or IPv6 /56, with a burst of ConnsPerIPv4. Default: 4.
	NewConnsPerSecondPerIP float64
	// LimitLoopback applies the per-address limits to 127.0.0.0/8 and ::1
	// too. libp2p exempts loopback by default, which local load generators
	// (rpbench) rely on; tests set it to exercise the real limits.
	// Default: false.
	LimitLoopback bool
}

// ConnMgr holds the connection manager's water marks: above HighWater the
// least useful unprotected connections are closed until LowWater remain.
// Protected peers (registered phones, configured peers, the super nodes
// a channel syncs with) are never closed and are not counted against
// LowWater, so the marks bound what the DHT leaves open: every walk
// dials the peers it asks and QUIC keeps an idle connection alive, so
// without a low bound a home ends up connected to every home it ever
// asked (sim: every other home at 100 homes, docs/SCALE.md), tens of
// KiB of memory each. In a large network a walk meets mostly peers it
// has no connection to however many are kept, so keeping few costs
// little.
type ConnMgr struct {
	// LowWater default: 64.
	LowWater int
	// HighWater default: 128.
	HighWater int
	// GracePeriod protects new connections from trimming. Default: 1 minute.
	GracePeriod time.Duration
}

// withDefaults returns cfg with defaults filled in, or an ErrConfig error.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DataDir == "" && cfg.IdentityPath == "" {
		return cfg, fmt.Errorf("%w: DataDir is required", ErrConfig)
	}
	if cfg.IdentityPath == "" {
		cfg.IdentityPath = filepath.Join(cfg.DataDir, IdentityFileName)
	}
	if cfg.NoListen && len(cfg.ListenAddrs) > 0 {
		return cfg, fmt.Errorf("%w: NoListen with ListenAddrs %v", ErrConfig, cfg.ListenAddrs)
	}
	if len(cfg.ListenAddrs) == 0 && !cfg.NoListen {
		cfg.ListenAddrs = DefaultListenAddrs
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "redpanda-homenode"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HolePunching || len(cfg.StaticRelays) > 0 || cfg.RelayPeerSource != nil {
		cfg.Relay = true
	}
	if cfg.RelayService && cfg.RelayACL == nil {
		return cfg, fmt.Errorf("%w: RelayService needs a RelayACL (the relay serves registered users only)", ErrConfig)
	}
	if err := cfg.RelayLimits.withDefaults(); err != nil {
		return cfg, err
	}
	if cfg.Relays == 0 {
		cfg.Relays = DefaultRelays
		if cfg.RelayPeerSource == nil && len(cfg.StaticRelays) > 0 {
			cfg.Relays = min(DefaultRelays, len(cfg.StaticRelays))
		}
	}
	switch cfg.ForceReachability {
	case network.ReachabilityUnknown, network.ReachabilityPublic, network.ReachabilityPrivate:
	default:
		return cfg, fmt.Errorf("%w: ForceReachability %d", ErrConfig, cfg.ForceReachability)
	}
	if cfg.Relays < 0 {
		return cfg, fmt.Errorf("%w: negative Relays", ErrConfig)
	}
	l := &cfg.Limits
	setInt(&l.Conns, 2560)
	setInt(&l.ConnsInbound, l.Conns)
	setInt(&l.ConnsOutbound, 1024)
	setInt(&l.Streams, 16*l.Conns)
	if l.Memory == 0 {
		l.Memory = max(512<<20, int64(l.Conns)*StreamReserve)
	}
	setInt(&l.FD, max(4096, l.Conns+1024))
	setInt(&l.ConnsPerIPv4, 256)
	setInt(&l.ConnsPerIPv6, 256)
	if l.NewConnsPerSecondPerIP == 0 {
		l.NewConnsPerSecondPerIP = 4
	}
	c := &cfg.ConnMgr
	setInt(&c.LowWater, 64)
	setInt(&c.HighWater, 128)
	if c.GracePeriod == 0 {
		c.GracePeriod = time.Minute
	}
	switch {
	case l.Conns < 0, l.ConnsInbound < 0, l.ConnsOutbound < 0, l.Streams < 0,
		l.Memory < 0, l.FD < 0, l.ConnsPerIPv4 < 0, l.ConnsPerIPv6 < 0,
		l.NewConnsPerSecondPerIP < 0:
		return cfg, fmt.Errorf("%w: negative limit in %+v", ErrConfig, *l)
	case c.LowWater >= c.HighWater:
		return cfg, fmt.Errorf("%w: ConnMgr.LowWater %d must be below HighWater %d", ErrConfig, c.LowWater, c.HighWater)
	case c.GracePeriod < 0:
		return cfg, fmt.Errorf("%w: negative ConnMgr.GracePeriod", ErrConfig)
	}
	return cfg, nil
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}
