package client

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// keepConnected does not poll: every wake-up of a phone's CPU costs
// battery (a 500 ms poll was two thirds of an idle connected phone's
// wake-ups, docs/MOBILE.md). A closed connection wakes it at once, to
// redial, and so does a new one, which may be a re-established session
// to register again on; otherwise it sleeps until a node's next redial
// (its backoff) or the next renewal check, which also picks up nodes
// learned meanwhile.

// connectionsChanged returns a channel that receives when a connection
// of the client's host opens or closes, and a function that stops
// watching.
func (c *Client) connectionsChanged() (<-chan struct{}, func()) {
	changed := make(chan struct{}, 1)
	note := func(network.Network, network.Conn) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	nb := &network.NotifyBundle{ConnectedF: note, DisconnectedF: note}
	c.h.Network().Notify(nb)
	return changed, func() { c.h.Network().StopNotify(nb) }
}

// redialWait is how long keepConnected may sleep: until the earliest
// redial still ahead in next, or nextRenew.
func redialWait(next map[peer.ID]time.Time, nextRenew time.Time) time.Duration {
	now := time.Now()
	due := nextRenew
	for _, t := range next {
		if t.After(now) && t.Before(due) {
			due = t
		}
	}
	return max(due.Sub(now), 0)
}
