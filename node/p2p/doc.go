// Package p2p builds the node's libp2p host: the persistent Ed25519
// identity in the data directory, the TCP and QUIC listeners, Noise and TLS
// security, the resource manager with limits sized for a home box, and the
// connection manager with helpers that protect registered and syncing peers.
// It also holds reachability when no port opens: AutoNAT, a circuit v2 relay
// service for the peers an ACL approves (RelayLimits), the relay client that
// reserves a slot on a friend's reachable node (StaticRelays,
// RelayPeerSource), DCUtR hole punching, and WatchReachability for the
// status page.
//
// It is the only place that calls libp2p.New, so every transport, limit and
// switch the node runs with is visible here. It must not know about the
// redPanda protocols that run over the host, about who is registered (the
// appliance answers RelayACL from its registrations), about UPnP (a port mapper is
// handed in through Config.NATManager) or about boards and systemd.
package p2p
