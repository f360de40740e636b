// Package peerlimit keeps the limits that remote peers share only with
// their own kind: a token bucket per key, where a key is a peer or the
// address prefix a connection comes from, never one global bucket that
// strangers could drain for everyone (docs/SECURITY.md). The table is
// bounded: past Max keys the least recently used is forgotten, and a
// forgotten key starts again with a full bucket, which gives an attacker
// no more than one more address would.
//
// It knows libp2p connections and multiaddrs, nothing of the protocols
// that use it.
package peerlimit

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"
)

// Prefix lengths that make one key: one IPv4 address, one IPv6 /56 (what
// a household is usually given), as node/p2p's connection limits count
// "one address".
const (
	IPv4Bits = 32
	IPv6Bits = 56
)

// DefaultMax is the table size when New is given none.
const DefaultMax = 4096

// Limiter is a bounded table of token buckets. Safe for concurrent use.
type Limiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // of *bucket, most recently used at the front
}

type bucket struct {
	key string
	l   *rate.Limiter
}

// New returns a Limiter that lets each key do burst things at once and
// then one per every; max bounds the keys remembered (DefaultMax if <= 0).
func New(every time.Duration, burst, max int) *Limiter {
	if max <= 0 {
		max = DefaultMax
	}
	return &Limiter{limit: rate.Every(every), burst: burst, max: max, now: time.Now, m: map[string]*list.Element{}}
}

// SetClock replaces the clock (tests).
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

// Allow takes one token from key's bucket, reporting whether there was
// one.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(key).AllowN(l.now(), 1)
}

// Wait reports how long key would have to wait for a token now (0: one is
// there), without taking it.
func (l *Limiter) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.get(key).ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// get returns key's bucket, making it (and forgetting the least recently
// used one past max) if needed. Called with mu held.
func (l *Limiter) get(key string) *rate.Limiter {
	if e, ok := l.m[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*bucket).l
	}
	for len(l.m) >= l.max {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.m, old.Value.(*bucket).key)
	}
	b := &bucket{key: key, l: rate.NewLimiter(l.limit, l.burst)}
	l.m[key] = l.lru.PushFront(b)
	return b.l
}

// AddrKey is the key of a remote address: its IPv4 address or IPv6 /56
// ("ip4:192.0.2.7", "ip6:2001:db8:0:100::/56"); for a relayed address, the
// relay ("relay:" and its peer ID), since everyone reaching the node
// through one relay arrives from there. An address with neither is
// returned whole.
func AddrKey(a ma.Multiaddr) string {
	if a == nil {
		return "none"
	}
	var ip netip.Addr
	relay := ""
	circuit := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6:
			if !ip.IsValid() {
				ip, _ = netip.AddrFromSlice(c.RawValue())
			}
		case ma.P_P2P:
			if !circuit {
				relay = c.Value()
			}
		case ma.P_CIRCUIT:
			circuit = true
		}
	}
	switch {
	case circuit && relay != "":
		return "relay:" + relay
	case ip.Is4() || ip.Is4In6():
		return "ip4:" + ip.Unmap().String()
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(IPv6Bits)
		return "ip6:" + p.String()
	}
	return a.String()
}

// ConnKey is AddrKey of the connection's remote address.
func ConnKey(c network.Conn) string { return AddrKey(c.RemoteMultiaddr()) }

// PeerKey is the key of one peer, for limits kept per peer.
func PeerKey(p peer.ID) string { return "peer:" + string(p) }
