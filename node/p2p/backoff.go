package p2p

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// ClearDialBackoff forgets the failed dials to p. libp2p's swarm refuses to
// dial an address that failed recently, for 5 s plus a second per earlier
// failure squared, up to 5 minutes: a caller that keeps a peer connected on
// its own redial schedule (a client and its home node, a node and its
// configured peers) clears it before each attempt, or a node that was down
// for a minute is not dialled again for minutes after it is back.
func ClearDialBackoff(h host.Host, p peer.ID) {
	if s, ok := h.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		s.Backoff().Clear(p)
	}
}
