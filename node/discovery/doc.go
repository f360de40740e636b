// Package discovery is how super nodes find each other: a Kademlia DHT
// (go-libp2p-kad-dht, server mode, protocol prefix /redpanda, never the
// public IPFS DHT) that maps each channel to the super nodes serving it,
// under a key that rotates every UTC day; the upkeep that keeps 3–5
// authorized super nodes connected per served channel; and the serving
// authorizations (statements signed by a channel's write key, exchanged
// over /redpanda/authz/1.0.0) that a node must show before a peer syncs a
// channel with it; and the friend nodes (friends.go): super nodes the
// node's users introduce over /redpanda/introduce/1.0.0, from the hints in
// what friends share, and nodes that proved a served channel to it — the
// friend graph as bootstrap, kept across restarts.
//
// The package takes a host and, for persisting the peers it knew, a store
// Meta bucket. It must not construct hosts, run the sync protocol itself
// (it only decides which peers are authorized and connected: the node
// answers sync.Access.Accept with Authorized), or know about registrations,
// clients, the appliance or boards.
package discovery
