package peersync

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Access is the relay rule, the one question the service asks about
// peers: who may exchange which channel's messages with this node. The
// node package answers it (node.Access: the owner and registered users,
// authorised super nodes, configured peers, blocks, rate limits); this
// package knows only the question.
type Access interface {
	// Accept says whether p may exchange ch's messages with this node. It
	// is asked before storing a message from p and before announcing or
	// serving one to it; for Publish p is the local host. It may wait
	// briefly (a statement exchange) and is asked outside the service's
	// locks.
	Accept(p peer.ID, ch channel.ID) bool
	// Admit is asked once more for each message a peer pushes or serves,
	// after Accept and before storing it; an error (wrapping
	// ErrRateLimited for a per-channel rate limit) refuses that message
	// only. Local Publish is not asked.
	Admit(p peer.ID, ch channel.ID) error
	// Known says, without waiting, whether the node knows p (a
	// registered user, a configured peer, an authorised super node). The
	// session of a peer it does not know, and that was accepted for none
	// of its wants, is a stranger's: it is closed after StrangerLifetime,
	// and past MaxStrangerSessionsPerPrefix in its address prefix or
	// MaxStrangerSessions in total the oldest such session is closed.
	Known(p peer.ID) bool
	// Opens says, without waiting, whether the node has a reason to sync
	// with p, so that it opens a session with p: p is known (a registered
	// device, a configured peer, a super node that proved a served
	// channel). Of a pair of nodes the smaller peer ID opens at once, the
	// larger after Config.OpenWait if no session came. A peer without a
	// reason gets no session from this side, so no Hello and none of the
	// channels the node serves: a DHT contact is not told what the node
	// serves, also of channels every peer may sync (it still gets a session
	// when it opens one itself). When a reason comes later (a peer proves
	// a served channel, a device registers) the node calls Resync, which
	// opens the session then.
	Opens(p peer.ID) bool
}

// open is the rule without Config.Access (tests, tools): every peer may
// exchange every channel, every message is admitted, every peer known.
type open struct{}

func (open) Accept(peer.ID, channel.ID) bool { return true }
func (open) Admit(peer.ID, channel.ID) error { return nil }
func (open) Known(peer.ID) bool              { return true }
func (open) Opens(peer.ID) bool              { return true }

// accessOf is the rule cfg gives and whether it tells strangers apart
// (without Access every peer is known and no stranger bound applies).
func accessOf(cfg Config) (Access, bool) {
	if cfg.Access != nil {
		return cfg.Access, true
	}
	return open{}, false
}
