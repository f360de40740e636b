package p2p

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Tags for Protect. A peer protected by any tag keeps its connections however
// far above the high-water mark the node is; each subsystem uses its own tag
// so that one unprotecting does not undo another's protection.
const (
	// TagRegistered protects a light client registered with this node.
	TagRegistered = "redpanda/registered"
	// TagSyncing protects a peer this node is syncing channels with.
	TagSyncing = "redpanda/syncing"
)

// Protect keeps the connection manager from trimming p's connections until
// Unprotect is called with the same tag.
func Protect(h host.Host, p peer.ID, tag string) {
	h.ConnManager().Protect(p, tag)
}

// Unprotect removes tag from p and reports whether p is still protected by
// another tag.
func Unprotect(h host.Host, p peer.ID, tag string) bool {
	return h.ConnManager().Unprotect(p, tag)
}

// IsProtected reports whether p is protected by tag ("" means any tag).
func IsProtected(h host.Host, p peer.ID, tag string) bool {
	return h.ConnManager().IsProtected(p, tag)
}
