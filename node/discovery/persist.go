package discovery

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// savedStatement is a served statement as persisted: the statement's
// encoding, then the Unix second until which it is used (8 bytes, big
// endian: clamped when it arrived, so that a restart does not extend it)
// and a byte that is 1 when a registered user handed it over. Records
// from before these were added hold the statement alone.
type savedStatement struct {
	st     *Statement
	until  time.Time
	handed bool
}

func (s *Service) saveStatement(ss savedStatement) {
	if s.cfg.Meta == nil {
		return
	}
	b, err := ss.st.MarshalBinary()
	if err == nil {
		b = binary.BigEndian.AppendUint64(b, uint64(ss.until.Unix()))
		var h byte
		if ss.handed {
			h = 1
		}
		err = s.cfg.Meta.Put(stmtKey(ss.st.Channel), append(b, h))
	}
	if err != nil {
		s.log.Warn("saving statement", "channel", short(ss.st.Channel), "err", err)
	}
}

// decodeSaved reads what saveStatement wrote, or a bare statement.
func decodeSaved(v []byte) (savedStatement, error) {
	if len(v) > 9 {
		if st, err := UnmarshalStatement(v[:len(v)-9]); err == nil {
			until := binary.BigEndian.Uint64(v[len(v)-9:])
			if until > 1<<62 {
				return savedStatement{}, fmt.Errorf("%w: saved statement time out of range", ErrMalformed)
			}
			return savedStatement{st: st, until: time.Unix(int64(until), 0).UTC(), handed: v[len(v)-1] == 1}, nil
		}
	}
	st, err := UnmarshalStatement(v)
	if err != nil {
		return savedStatement{}, err
	}
	return savedStatement{st: st, until: st.Until}, nil
}

func (s *Service) deleteStatement(ch channel.ID) {
	if s.cfg.Meta == nil {
		return
	}
	if err := s.cfg.Meta.Delete(stmtKey(ch)); err != nil {
		s.log.Warn("deleting statement", "channel", short(ch), "err", err)
	}
}

// loadStatements returns this node's saved statements that still verify,
// with their use clamped to MaxStatementValidity from now.
func (s *Service) loadStatements() []savedStatement {
	if s.cfg.Meta == nil {
		return nil
	}
	now := s.cfg.Now()
	var out []savedStatement
	err := s.cfg.Meta.ForEach(func(k, v []byte) error {
		if len(k) <= len(stmtPrefix) || string(k[:len(stmtPrefix)]) != stmtPrefix {
			return nil
		}
		ss, err := decodeSaved(v)
		if err == nil {
			err = VerifyStatement(ss.st, ss.st.Channel, s.h.ID(), now)
		}
		if err == nil && !now.Before(ss.until) {
			err = fmt.Errorf("%w: used until %s", ErrExpired, ss.until.Format(time.RFC3339))
		}
		if err != nil {
			s.log.Info("saved statement dropped", "key", string(k), "err", err)
			return nil
		}
		ss.until = clampUntil(ss.until, now)
		out = append(out, ss)
		return nil
	})
	if err != nil {
		s.log.Warn("reading saved statements", "err", err)
	}
	return out
}

// clampUntil is until, at most MaxStatementValidity after now.
func clampUntil(until, now time.Time) time.Time {
	if limit := now.Add(MaxStatementValidity); until.After(limit) {
		return limit
	}
	return until
}
