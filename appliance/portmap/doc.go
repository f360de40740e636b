// Package portmap opens the node's ports on the home router with UPnP IGD
// (github.com/huin/goupnp) and says plainly what happened.
//
// A Mapper discovers the gateway (WANIPConnection2, WANIPConnection1 or
// WANPPPConnection1), maps each wanted TCP and UDP port with a lease (one hour
// by default) that it renews in place, falls back to a permanent mapping for
// routers that accept only those, keeps the same external port across
// restarts where the router allows, re-creates mappings after the router
// reboots and removes them on Close. Its Diagnosis tells the status page
// whether there is no gateway, the gateway refused (with the UPnP error),
// the house is behind carrier-grade or double NAT, or the ports are open.
//
// The Mapper is the only owner of the router's mappings: plug it into libp2p
// with libp2p.NATManager(m.NATManager) (p2p.Config.NATManager) and never also
// enable libp2p.NATPortMap. It must not know about redPanda protocols, the
// store or the board; it knows ports, the router and the data directory.
package portmap
