package discovery

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// maxRememberedAddrs bounds the addresses kept per authorized peer.
const maxRememberedAddrs = 8

// remember notes where p, which has just proved it serves a channel, is
// reached now: the connections' remote addresses and what the peerstore
// holds. The peerstore forgets a peer's addresses 15 minutes after the
// last connection closes, and the DHT does not bring them back after a
// split or a long outage: provider records then come without addresses,
// and a DHT cut in two does not merge again by itself (kad-dht asks its
// bootstrap peers only when its table is empty). redial uses these
// instead. Found by the network simulation (docs/SCALE.md).
func (s *Service) remember(p peer.ID) {
	var addrs []multiaddr.Multiaddr
	for _, c := range s.h.Network().ConnsToPeer(p) {
		addrs = mergeAddrs(addrs, []multiaddr.Multiaddr{c.RemoteMultiaddr()})
	}
	addrs = mergeAddrs(addrs, s.h.Peerstore().Addrs(p))
	if len(addrs) == 0 {
		return
	}
	s.mu.Lock()
	s.seen[p] = addrs[:min(len(addrs), maxRememberedAddrs)]
	s.mu.Unlock()
}

// redial connects again, at the remembered addresses, the super nodes
// that proved ch (statement still valid) and are not connected now,
// skipping those that failed lately, until MaxPeers are connected. It
// returns how many it connected.
func (s *Service) redial(ch channel.ID, have []peer.ID) int {
	now, wall := s.cfg.Now(), time.Now()
	s.mu.Lock()
	var cands []peer.AddrInfo
	for p, chs := range s.authz {
		if until, ok := chs[ch]; !ok || !now.Before(until) || slices.Contains(have, p) {
			continue
		}
		if until, bad := s.backoff[ch][p]; bad && wall.Before(until) {
			continue
		}
		if addrs := s.seen[p]; len(addrs) > 0 {
			cands = append(cands, peer.AddrInfo{ID: p, Addrs: slices.Clone(addrs)})
		}
	}
	s.mu.Unlock()
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	got := 0
	for _, pi := range cands[:min(len(cands), s.cfg.MaxAttempts)] {
		if len(have)+got >= s.cfg.MaxPeers || s.ctx.Err() != nil {
			break
		}
		if err := s.connect(s.ctx, pi, ch); err != nil {
			s.log.Debug("known super node unreachable", "channel", short(ch), "peer", pi.ID, "err", err)
			s.mu.Lock()
			if s.backoff[ch] == nil {
				s.backoff[ch] = map[peer.ID]time.Time{}
			}
			s.backoff[ch][pi.ID] = time.Now().Add(s.cfg.FailureBackoff)
			s.mu.Unlock()
			continue
		}
		got++
	}
	if got > 0 {
		s.log.Info("known super nodes reconnected for channel", "channel", short(ch), "reconnected", got)
	}
	return got
}
