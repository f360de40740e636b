package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// New builds and starts the host described by cfg: it loads or creates the
// identity, builds the resource and connection managers and listens on
// cfg.ListenAddrs. Every listen address must come up, on a port no other
// process listens on (see ListenError); otherwise New fails naming each
// one that did not and why. The caller closes the host.
func New(cfg Config) (host.Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sk, err := LoadOrCreateIdentity(cfg.IdentityPath)
	if err != nil {
		return nil, err
	}
	listen, err := parseListenAddrs(cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	// Options may put the host on another network than this system's
	// (package sim's simulated one), whose addresses no socket here can
	// bind: the probe is for this system's ports only. checkListeners
	// still requires every address to come up.
	var noFamily []listenAddr
	if len(cfg.Options) == 0 {
		if listen, noFamily, err = probeListeners(listen); err != nil {
			return nil, fmt.Errorf("p2p: %w", err)
		}
	}
	if len(noFamily) > 0 {
		cfg.ListenAddrs = cfg.ListenAddrs[:0:0]
		for _, la := range listen {
			cfg.ListenAddrs = append(cfg.ListenAddrs, la.ma.String())
		}
		for _, la := range noFamily {
			cfg.Logger.Warn("not listening: this system has no IPv"+la.network[3:], "addr", la.ma.String())
		}
	}
	rm, err := newResourceManager(cfg.Limits, cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnMgr.LowWater, cfg.ConnMgr.HighWater,
		connmgr.WithGracePeriod(cfg.ConnMgr.GracePeriod))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}

	opts := []libp2p.Option{
		libp2p.Identity(sk),
		// Explicit transports and security so a libp2p upgrade that changes
		// its defaults does not change what the node speaks.
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent(cfg.UserAgent),
	}
	if cfg.NoListen {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(cfg.ListenAddrs...))
	}
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if cfg.Bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(cfg.Bandwidth))
	}
	if cfg.NATManager != nil {
		opts = append(opts, libp2p.NATManager(cfg.NATManager))
	}
	if cfg.Relay {
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(relayServiceOptions(cfg)...))
	}
	if len(cfg.StaticRelays) > 0 || cfg.RelayPeerSource != nil {
		//lint:ignore SA1019 the replacements take either static relays or a peer source; a node may have both (friends' nodes and the DHT)
		opts = append(opts, libp2p.EnableAutoRelay(autorelayOptions(cfg)...))
	}
	if cfg.AutoNATv2 {
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	if cfg.AutoNATService {
		opts = append(opts, libp2p.EnableNATService())
	}
	switch cfg.ForceReachability {
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	opts = append(opts, cfg.Options...)

	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p has taken ownership of rm and cm and closes them itself on
		// the failure paths it knows; closing them twice could panic.
		return nil, fmt.Errorf("p2p: new host (listen %v): %w", cfg.ListenAddrs, err)
	}
	if err := checkListeners(h, listen); err != nil {
		h.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	cfg.Logger.Info("p2p host started", "peer", h.ID(), "addrs", h.Addrs(),
		"max_conns", cfg.Limits.Conns, "conns_per_ipv4", cfg.Limits.ConnsPerIPv4)
	return h, nil
}
