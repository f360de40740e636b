// Package p2p builds the node's libp2p host: the persistent Ed25519
// identity in the data directory, the TCP and QUIC listeners, Noise and TLS
// security, the resource manager with limits sized for a home box, and the
// connection manager with helpers that protect registered and syncing peers.
//
// It is the only place that calls libp2p.New, so every transport, limit and
// switch the node runs with is visible here. It must not know about the
// redPanda protocols that run over the host, about UPnP (a port mapper is
// handed in through Config.NATManager) or about boards and systemd.
package p2p
