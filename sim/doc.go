// Package sim runs a network of redPanda home nodes in virtual time: the
// real node (libp2p host with its resource and connection managers,
// kad-dht under /redpanda, discovery with its serving statements, sync,
// routing, the bbolt store on files in a temporary directory) for every
// home, on a simulated internet (github.com/marcopolo/simnet: per-link
// bandwidth and latency, the construction of go-libp2p's x/simlibp2p)
// inside a testing/synctest bubble, so that a day of a thousand homes
// runs in minutes on two cores. Only the wire and the clock are
// simulated.
//
// It lays out homes, owners and their channels from a small-world friend
// graph, lets the homes find each other as they do in the field (each
// home is introduced to the homes of the friends it shares channels with;
// everything else comes from the DHT), posts messages at a given rate,
// switches homes off, splits the network, skews clocks, and measures DHT
// lookups, provider records, routing tables, delivery and traffic
// (Report). cmd/rpsim runs it at other sizes and draws the curves.
//
// It drives nodes only through what the node offers its layers above
// (node.Node, its Discovery and Sync services); it must not reach into
// their internals, and nothing outside tests and cmd/rpsim may import it.
package sim
