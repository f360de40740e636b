// Package attack is the adversarial test suite of issue 19: hostile peers
// of our own making, real libp2p hosts on loopback source addresses,
// each running one attack class against a real homenode process started
// under the shipped unit's memory limits (GOMEMLIMIT, and a memory cgroup
// where the caller may make one), while a real friend (the node's owner,
// a client SDK client) sends messages through the node and measures
// the round trip.
//
// Each attack returns a Report: the node's peak RSS and the friend's send
// latencies during the attack, whether every acknowledged message is still
// on the node, and whether the node's heap came back afterwards. The tests
// in this package run each class at bounded sizes (make test);
// cmd/rpattack runs them at full size (make attack).
//
// The package drives the node only from outside, as an attacker on the
// network and an owner at the admin socket would; it must not reach into
// the node's process or packages' internals.
package attack
