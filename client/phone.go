package client

import (
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/redpanda-p2p/homenode/node/p2p"
)

// hostConfig is the libp2p host of this client. A dial-only client (a
// phone, Config.DialOnly) listens on nothing: it has no address to
// advertise, so libp2p never resolves listen addresses against the
// device's interfaces, and a phone never holds a listener it cannot keep
// (the OS drops it in the background, and a mobile carrier's NAT lets
// nothing in). Its reachability is fixed at private, so AutoNAT runs no
// probes and keeps no timer.
func (c *Client) hostConfig() p2p.Config {
	cfg := p2p.Config{DataDir: c.cfg.Home, ListenAddrs: c.cfg.Listen, UserAgent: "redpanda-client", Logger: c.cfg.Logger}
	if c.cfg.DialOnly {
		cfg.ListenAddrs, cfg.NoListen = nil, true
		cfg.ForceReachability = network.ReachabilityPrivate
	}
	return cfg
}
