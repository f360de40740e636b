package discovery

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Meta keys: "peers" holds the routing table's peers as JSON; "stmt/" +
// channel ID holds this node's statement for that channel.
var peersKey = []byte("peers")

const stmtPrefix = "stmt/"

type savedPeer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// loadPeers reads the peers saved before a restart. A damaged record is
// logged and ignored: it only costs a slower rejoin.
func (s *Service) loadPeers() []peer.AddrInfo {
	if s.cfg.Meta == nil {
		return nil
	}
	b, err := s.cfg.Meta.Get(peersKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.log.Warn("reading saved DHT peers", "err", err)
		return nil
	}
	pis, err := decodePeers(b)
	if err != nil {
		s.log.Warn("saved DHT peers unreadable; starting without them", "err", err)
	}
	return pis
}

func decodePeers(b []byte) ([]peer.AddrInfo, error) {
	var saved []savedPeer
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%w: saved peers: %v", ErrMalformed, err)
	}
	var out []peer.AddrInfo
	var bad error
	for _, sp := range saved {
		id, err := peer.Decode(sp.ID)
		if err != nil {
			bad = fmt.Errorf("%w: saved peer %q: %v", ErrMalformed, sp.ID, err)
			continue
		}
		pi := peer.AddrInfo{ID: id}
		for _, a := range sp.Addrs {
			if ma, err := multiaddr.NewMultiaddr(a); err == nil {
				pi.Addrs = append(pi.Addrs, ma)
			}
		}
		if len(pi.Addrs) > 0 {
			out = append(out, pi)
		}
		if len(out) == maxPersistedPeers {
			break
		}
	}
	return out, bad
}

// savePeers saves up to maxPersistedPeers routing-table peers with their
// known addresses, so that a restarted node rejoins without a list.
func (s *Service) savePeers() {
	if s.cfg.Meta == nil {
		return
	}
	var saved []savedPeer
	for _, p := range s.dht.RoutingTable().ListPeers() {
		addrs := s.h.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			continue
		}
		sp := savedPeer{ID: p.String()}
		for _, a := range addrs {
			sp.Addrs = append(sp.Addrs, a.String())
		}
		saved = append(saved, sp)
		if len(saved) == maxPersistedPeers {
			break
		}
	}
	if len(saved) == 0 {
		// An empty table (shutting down alone) must not erase what a
		// restart needs.
		return
	}
	b, err := json.Marshal(saved)
	if err == nil {
		err = s.cfg.Meta.Put(peersKey, b)
	}
	if err != nil {
		s.log.Warn("saving DHT peers", "err", err)
	}
}

func stmtKey(ch channel.ID) []byte { return []byte(stmtPrefix + ch.String()) }

func (s *Service) saveStatement(st *Statement) {
	if s.cfg.Meta == nil {
		return
	}
	b, err := st.MarshalBinary()
	if err == nil {
		err = s.cfg.Meta.Put(stmtKey(st.Channel), b)
	}
	if err != nil {
		s.log.Warn("saving statement", "channel", short(st.Channel), "err", err)
	}
}

func (s *Service) deleteStatement(ch channel.ID) {
	if s.cfg.Meta == nil {
		return
	}
	if err := s.cfg.Meta.Delete(stmtKey(ch)); err != nil {
		s.log.Warn("deleting statement", "channel", short(ch), "err", err)
	}
}

// loadStatements returns this node's saved statements that still verify.
func (s *Service) loadStatements() []*Statement {
	if s.cfg.Meta == nil {
		return nil
	}
	now := s.cfg.Now()
	var out []*Statement
	err := s.cfg.Meta.ForEach(func(k, v []byte) error {
		if len(k) <= len(stmtPrefix) || string(k[:len(stmtPrefix)]) != stmtPrefix {
			return nil
		}
		st, err := UnmarshalStatement(v)
		if err == nil {
			err = VerifyStatement(st, st.Channel, s.h.ID(), now)
		}
		if err != nil {
			s.log.Info("saved statement dropped", "key", string(k), "err", err)
			return nil
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		s.log.Warn("reading saved statements", "err", err)
	}
	return out
}
