package peersync

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// addrPrefix is the network a remote address belongs to, the unit in which
// strangers' sessions are bounded: an IPv4 /24 or an IPv6 /48 (what one
// household or one small provider customer gets), or the whole address
// when it is not IP.
func addrPrefix(ma multiaddr.Multiaddr) string {
	if ma == nil {
		return ""
	}
	ip, err := manet.ToIP(ma)
	if err != nil {
		return ma.String()
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ma.String()
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	pfx, err := addr.Prefix(bits)
	if err != nil {
		return addr.String()
	}
	return pfx.String()
}

// stranger reports whether the session's peer is unknown to the node and
// was accepted for none of its wants.
func (s *Service) stranger(ss *session) bool {
	if !s.knowsPeers || s.cfg.Light {
		return false
	}
	ss.mu.Lock()
	entitled := ss.entitled
	ss.mu.Unlock()
	if entitled {
		return false
	}
	if s.access.Known(ss.peer) {
		ss.mu.Lock()
		ss.entitled = true
		ss.mu.Unlock()
		return false
	}
	return true
}

// boundStrangers closes the oldest strangers' sessions while there are more
// than MaxStrangerSessionsPerPrefix in the new session's prefix or more than
// MaxStrangerSessions in all. The newest is kept: a client that connects
// and registers a moment later must not be locked out by sessions that
// were held open before it came.
func (s *Service) boundStrangers(newest *session) {
	if !s.stranger(newest) {
		return
	}
	var all, same []*session
	for _, ss := range s.liveSessions() {
		if ss == newest || !s.stranger(ss) {
			continue
		}
		all = append(all, ss)
		if ss.prefix == newest.prefix {
			same = append(same, ss)
		}
	}
	oldestFirst := func(a, b *session) int { return a.started.Compare(b.started) }
	closed := map[*session]bool{}
	if over := len(same) + 1 - s.cfg.MaxStrangerSessionsPerPrefix; over > 0 {
		slices.SortFunc(same, oldestFirst)
		for _, ss := range same[:over] {
			closed[ss] = true
			ss.close(fmt.Errorf("%w: more than %d sessions of unknown peers from %s", ErrTooManyStrangers, s.cfg.MaxStrangerSessionsPerPrefix, ss.prefix))
		}
	}
	all = slices.DeleteFunc(all, func(ss *session) bool { return closed[ss] })
	if over := len(all) + 1 - s.cfg.MaxStrangerSessions; over > 0 {
		slices.SortFunc(all, oldestFirst)
		for _, ss := range all[:over] {
			ss.close(fmt.Errorf("%w: more than %d sessions of unknown peers", ErrTooManyStrangers, s.cfg.MaxStrangerSessions))
		}
	}
}

// expireSessions closes the sessions whose peer has not said Hello within
// HelloTimeout, and strangers' sessions older than StrangerLifetime.
func (s *Service) expireSessions(now time.Time) {
	for _, ss := range s.liveSessions() {
		age := now.Sub(ss.started)
		switch {
		case age > s.cfg.HelloTimeout && !ss.peerWantsKnown():
			ss.close(fmt.Errorf("%w: no hello within %s", ErrProtocol, s.cfg.HelloTimeout))
		case age > s.cfg.StrangerLifetime && s.stranger(ss):
			ss.close(fmt.Errorf("%w: unknown peer kept %s", ErrTooManyStrangers, s.cfg.StrangerLifetime))
		}
	}
}
