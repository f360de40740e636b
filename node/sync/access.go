package sync

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
	// Known says, without waiting, whether the node knows p. The session
	// of a peer it does not know, and that was accepted for none of its
	// wants, is a stranger's (Config.Known).
	Known(p peer.ID) bool
}

// hooks is an Access made of Config's single hooks, each nil one
// answering as Config says: accept everyone, admit every message, know
// every peer.
type hooks struct {
	accept func(peer.ID, channel.ID) bool
	admit  func(peer.ID, channel.ID) error
	known  func(peer.ID) bool
}

func (h hooks) Accept(p peer.ID, ch channel.ID) bool {
	return h.accept == nil || h.accept(p, ch)
}

func (h hooks) Admit(p peer.ID, ch channel.ID) error {
	if h.admit == nil {
		return nil
	}
	return h.admit(p, ch)
}

func (h hooks) Known(p peer.ID) bool { return h.known == nil || h.known(p) }

// accessOf is the rule cfg gives and whether it tells strangers apart
// (without Access or Known every peer is known and no stranger bound
// applies).
func accessOf(cfg Config) (Access, bool) {
	if cfg.Access != nil {
		return cfg.Access, true
	}
	return hooks{accept: cfg.Accept, admit: cfg.Admit, known: cfg.Known}, cfg.Known != nil
}
