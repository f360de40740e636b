package p2p

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
	"github.com/prometheus/client_golang/prometheus"
)

// newResourceManager builds a fixed-limit resource manager: libp2p's scaled
// defaults for per-peer, per-protocol and per-service scopes, with the system
// and transient scopes and the per-address limits taken from l.
func newResourceManager(l Limits, reg prometheus.Registerer) (network.ResourceManager, error) {
	system := rcmgr.ResourceLimits{
		Conns:           rcmgr.LimitVal(l.Conns),
		ConnsInbound:    rcmgr.LimitVal(l.ConnsInbound),
		ConnsOutbound:   rcmgr.LimitVal(l.ConnsOutbound),
		Streams:         rcmgr.LimitVal(l.Streams),
		StreamsInbound:  rcmgr.LimitVal(l.Streams),
		StreamsOutbound: rcmgr.LimitVal(l.Streams),
		Memory:          rcmgr.LimitVal64(l.Memory),
		FD:              rcmgr.LimitVal(l.FD),
	}
	// Transient holds connections still in their handshake: a quarter of the
	// system allows a whole household of phones to reconnect at once.
	transient := rcmgr.ResourceLimits{
		Conns:           rcmgr.LimitVal(max(1, l.Conns/4)),
		ConnsInbound:    rcmgr.LimitVal(max(1, l.ConnsInbound/4)),
		ConnsOutbound:   rcmgr.LimitVal(max(1, l.ConnsOutbound/4)),
		Streams:         rcmgr.LimitVal(max(1, l.Streams/16)),
		StreamsInbound:  rcmgr.LimitVal(max(1, l.Streams/16)),
		StreamsOutbound: rcmgr.LimitVal(max(1, l.Streams/16)),
		Memory:          rcmgr.LimitVal64(max(1, l.Memory/8)),
		FD:              rcmgr.LimitVal(max(1, l.FD/4)),
	}
	// Every connected phone holds one long-lived sync stream, and a light
	// client opens it, so they are all inbound. libp2p's scaled default
	// per protocol (512 inbound streams + 256 per GiB of RAM/8, 64 MiB of
	// accounting + 164 MiB per GiB/8) refused new sync streams at ~1,265
	// on a 24 GB machine, and would near 600 on a 4 GB board. A protocol
	// without its own limit may use what the system allows; the system
	// and per-peer limits still bound it.
	protocol := rcmgr.ResourceLimits{
		StreamsInbound:  rcmgr.LimitVal(l.Streams),
		StreamsOutbound: rcmgr.LimitVal(l.Streams),
		Streams:         rcmgr.LimitVal(l.Streams),
		Memory:          rcmgr.LimitVal64(l.Memory),
	}
	partial := rcmgr.PartialLimitConfig{System: system, Transient: transient, ProtocolDefault: protocol}
	limiter := rcmgr.NewFixedLimiter(partial.Build(rcmgr.DefaultLimits.AutoScale()))

	burst := max(l.ConnsPerIPv4, l.ConnsPerIPv6)
	rateLimit := rate.Limit{RPS: l.NewConnsPerSecondPerIP, Burst: burst}
	connRate := &rate.Limiter{
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rateLimit}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rateLimit},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 4 * l.NewConnsPerSecondPerIP, Burst: 4 * burst}},
			},
		},
	}
	opts := []rcmgr.Option{
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: l.ConnsPerIPv4}},
			[]rcmgr.ConnLimitPerSubnet{
				{PrefixLength: 56, ConnCount: l.ConnsPerIPv6},
				{PrefixLength: 48, ConnCount: 4 * l.ConnsPerIPv6},
			}),
	}
	if l.LimitLoopback {
		// Empty (not nil) prefix lists drop libp2p's unlimited-loopback rule,
		// so loopback is held to the same per-address limits as everyone.
		opts = append(opts, rcmgr.WithNetworkPrefixLimit([]rcmgr.NetworkPrefixLimit{}, []rcmgr.NetworkPrefixLimit{}))
	} else {
		connRate.NetworkPrefixLimits = []rate.PrefixLimit{
			{Prefix: mustPrefix("127.0.0.0/8")},
			{Prefix: mustPrefix("::1/128")},
		}
	}
	opts = append(opts, rcmgr.WithConnRateLimiters(connRate))
	if reg != nil {
		rcmgr.MustRegisterWith(reg)
	} else {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	return rcmgr.NewResourceManager(limiter, opts...)
}

// SystemLimit returns the system-wide limits the host's resource manager
// enforces now (for the status page, and to check the configuration took).
func SystemLimit(h host.Host) (rcmgr.Limit, error) {
	var lim rcmgr.Limit
	err := h.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
		sl, ok := s.(rcmgr.ResourceScopeLimiter)
		if !ok {
			return errors.New("system scope does not expose its limit")
		}
		lim = sl.Limit()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("p2p: system limit: %w", err)
	}
	return lim, nil
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
