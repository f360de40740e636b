package node

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Access is this node's relay rule: who may sync which channel with it.
// It is the one answer node/peersync asks (sync.Access). A peer may exchange
// a channel's messages when it is
//   - the node itself, or a peer the operator configured (Config.Peers);
//   - anyone, for a channel the operator serves by hand (Config.Channels,
//     Serve);
//   - a registered user: the owner, and the friends their hop tickets
//     admitted (node/routing);
//   - a super node that proved with a signed statement that it serves the
//     channel (node/discovery);
//
// unless the operator blocks the channel (Config.Blocklist: the
// appliance's owner blocklist). What peers push is also held to a
// per-channel rate (Config.RateLimit), and Known tells the peers above
// from strangers.
type Access struct {
	n      *Node
	blocks Blocklist                       // nil: nothing blocked
	admit  func(peer.ID, channel.ID) error // nil: no limit
}

// Blocklist is the channels the operator blocks: neither stored,
// announced nor served, whoever asks. Blocked is asked for every message
// and announcement, so it must answer at once.
type Blocklist interface {
	Blocked(ch channel.ID) bool
}

// newAccess builds the node's rule from its Config.
func newAccess(n *Node) *Access {
	a := &Access{n: n, blocks: n.cfg.Blocklist}
	if n.cfg.RateLimit.PerSecond > 0 {
		a.admit = newChannelLimiter(n.cfg.RateLimit, n.cfg.Now).admit
	}
	return a
}

// Accept says whether p may exchange ch's messages with this node.
func (a *Access) Accept(p peer.ID, ch channel.ID) bool {
	if a.blocks != nil && a.blocks.Blocked(ch) {
		return false
	}
	return a.n.trusted(p, ch)
}

// Admit takes one message pushed or served by p in ch against the rate
// limit; an error wraps sync.ErrRateLimited.
func (a *Access) Admit(p peer.ID, ch channel.ID) error {
	if a.admit == nil {
		return nil
	}
	return a.admit(p, ch)
}

// Known says, without waiting, whether the node knows p.
func (a *Access) Known(p peer.ID) bool { return a.n.known(p) }

// Opens says, without waiting, whether the node opens a sync session with
// p: it knows p. Channels the operator serves by hand (a paired
// appliance's owner's channels, FollowOwner) are no reason: every peer may
// sync them, but only in a session that peer opens, so a DHT contact that
// proved nothing gets no session from this node and no list of the
// channels served here; discovery's PeerAuthorized and a registration
// open one when p comes to be known.
func (a *Access) Opens(p peer.ID) bool { return a.n.known(p) }

// trusted says whether p may exchange channel ch's messages with this
// node: the node itself, a peer configured by the operator, a registered
// user, or a super node that proved with a signed statement that it
// serves ch. Channels the operator serves by configuration (--serve) are
// open to every peer: that is what serving them by hand means.
func (n *Node) trusted(p peer.ID, ch channel.ID) bool {
	if p == n.Host.ID() || n.configured[p] || n.operatorServes(ch) {
		return true
	}
	if n.Registry.Registered(p) {
		return true
	}
	return n.Discovery != nil && n.Discovery.Authorized(p, ch)
}

// known says, without waiting, whether the node knows p: itself, a
// configured peer, a registered user's device or a super node that proved
// it serves a channel served here. Sync bounds the sessions of the others.
func (n *Node) known(p peer.ID) bool {
	if p == n.Host.ID() || n.configured[p] || n.Registry.Registered(p) {
		return true
	}
	return n.Discovery != nil && n.Discovery.Known(p)
}

func (n *Node) operatorServes(ch channel.ID) bool {
	n.opMu.RLock()
	defer n.opMu.RUnlock()
	return slices.Contains(n.cfg.Channels, ch)
}
