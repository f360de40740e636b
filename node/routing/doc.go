// Package routing is how light clients hand their routing to super nodes
// (paper §4.4.1, §4.5): hop tickets and the chains that prove a client's
// distance from a node's owner, the registration protocol
// /redpanda/register/1.0.0 with its registry (capacity served in hop order,
// eviction with a reason, quotas, rate limit, revocation through the trust
// chain, persistence), and the super-node adverts clients post in their
// channels together with the choice of the best few.
//
// It must not know how registrations turn into synced channels (the node
// package reads Channels and OnChange), nor how records are stored (any
// Records will do; node/store's Meta fits), nor about pairing, boards or
// the DHT.
package routing
