package peersync

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Resync starts catching up chs with peer p now. The catch-up at
// connection time skips channels the Accept policy refused then; when p
// is authorized later (two super nodes meeting for the first time prove
// to each other that they serve a channel, a light client registers its
// channels), the node calls Resync so that history older than the proof
// is reconciled too. The wants of p that were ignored because p was not
// entitled then are not kept anywhere, so those of chs that Accept now
// allows become p's wants: a super node that proved it serves a channel,
// and a client that registered one, want it; and a full peer is told
// that this node wants them (our Hello listed only what p could sync
// then).
//
// Without a session with p, a connected p is opened to if the node now
// has a reason to sync with p (Access.Opens), at once by the smaller peer
// ID and after Config.OpenWait by the larger (connected): the opener's
// Hello lists what p may sync now and the pair reconciles it.
func (s *Service) Resync(p peer.ID, chs ...channel.ID) {
	s.mu.Lock()
	ss := s.sessions[p]
	s.mu.Unlock()
	if ss == nil {
		if s.h.Network().Connectedness(p) == network.Connected {
			s.connected(p)
		}
		return
	}
	ss.addWants(chs, nil)
	ss.mu.Lock()
	light := ss.light
	ss.mu.Unlock()
	if !light {
		var ours []channel.ID
		for _, ch := range chs {
			if s.Wants(ch) {
				ours = append(ours, ch)
			}
		}
		ss.tellWant(ours, nil)
	}
	ss.reconcileShared(chs)
}
