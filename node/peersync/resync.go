package peersync

import (
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
// and a client that registered one, want it. Without a session with p it
// does nothing.
func (s *Service) Resync(p peer.ID, chs ...channel.ID) {
	s.mu.Lock()
	ss := s.sessions[p]
	s.mu.Unlock()
	if ss != nil {
		ss.addWants(chs, nil)
		ss.reconcileShared(chs)
	}
}
