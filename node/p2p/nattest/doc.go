// Package nattest holds the three-node reachability test that needs root:
// a home node behind a NAT router without UPnP (nft masquerade in network
// namespaces the test creates), a friend's reachable node offering the
// relay, and a client that reaches the home node only through that relay.
// Each node runs in its own namespace as a re-exec of the test binary.
//
// It has no code of its own: it exists so that the namespace test, which
// skips without root, stays apart from node/p2p's loopback tests. It must
// not know about the appliance; it drives node/p2p directly.
package nattest
