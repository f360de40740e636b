package routing

import (
	"crypto/sha256"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/peerlimit"
)

// What strangers can make the registry keep, and how fast they can make
// it work (docs/SECURITY.md, "Registrations").
//
// A request is remembered in the replay cache only once it is known to be
// admissible (signature, chain, policy, room): a request the node would
// refuse anyway needs no replay protection, and remembering it first let
// chainless requests from 40 addresses fill the cache and lock out a new
// friend. Admissible requests come from identities with a chain to the
// owner (or strangers where hop infinity is allowed), each device at most
// RequestBurst + RequestsPerMinute per minute; past maxSeen the oldest
// entries are forgotten instead of refusing everyone. Forgetting one only
// lets its own device send it again: a request names the peer it must
// come from, which the transport authenticates.
//
// Requests are limited per peer (Config.RequestsPerMinute), and those of
// peers that are no registered device also per source address (an IPv4
// address, an IPv6 /56, or the relay), so that fresh peer IDs from one
// address share one bucket and strangers on other addresses, like the
// new friend, keep theirs. There is no global bucket.
const (
	maxSeen               = 1 << 16
	addrRequestsPerMinute = 60
	addrRequestBurst      = 20
	maxLimiterKeys        = 4096
)

// replayCache holds the signature hashes of admitted requests until their
// timestamp leaves the replay window.
type replayCache struct {
	until map[[32]byte]time.Time
	order [][32]byte // insertion order, for forgetting the oldest when full
	head  int
	swept time.Time // last expire scan
}

func newReplayCache() *replayCache { return &replayCache{until: map[[32]byte]time.Time{}} }

func (c *replayCache) has(sig [32]byte) bool {
	_, ok := c.until[sig]
	return ok
}

// remember keeps sig until until, forgetting the oldest entries past
// maxSeen.
func (c *replayCache) remember(sig [32]byte, until time.Time) {
	if _, ok := c.until[sig]; ok {
		return
	}
	for len(c.until) >= maxSeen && c.head < len(c.order) {
		delete(c.until, c.order[c.head])
		c.head++
	}
	c.until[sig] = until
	c.order = append(c.order, sig)
	c.compact()
}

// expire forgets what left the window, scanning at most once a second: a
// scan per request made a full cache cost O(n) per request. An entry kept
// past its window refuses nothing: a request that old fails the timestamp
// check first.
func (c *replayCache) expire(now time.Time) {
	if now.Sub(c.swept) < time.Second && now.After(c.swept) {
		return
	}
	c.swept = now
	for k, until := range c.until {
		if now.After(until) {
			delete(c.until, k)
		}
	}
	c.compact()
}

// compact drops the forgotten front of order, and expired keys from it,
// once they make up most of it.
func (c *replayCache) compact() {
	if len(c.order) < 1024 || len(c.order) < 2*len(c.until) {
		return
	}
	live := make([][32]byte, 0, len(c.until))
	for _, k := range c.order[c.head:] {
		if _, ok := c.until[k]; ok {
			live = append(live, k)
		}
	}
	c.order, c.head = live, 0
}

func (c *replayCache) len() int { return len(c.until) }

func sigHash(sig []byte) [32]byte { return sha256.Sum256(sig) }

// requestLimits are the per-peer and per-address buckets.
type requestLimits struct {
	peers, addrs *peerlimit.Limiter
}

func newRequestLimits(cfg Config) requestLimits {
	return requestLimits{
		peers: peerlimit.New(time.Minute/time.Duration(cfg.RequestsPerMinute), cfg.RequestBurst, maxLimiterKeys),
		addrs: peerlimit.New(time.Minute/addrRequestsPerMinute, addrRequestBurst, maxLimiterKeys),
	}
}

// allow takes a token for a request from p at address addr ("" when
// unknown); registered says p is a registered device, whose requests
// draw on its own bucket only.
func (l requestLimits) allow(p peer.ID, addr string, registered bool) (ok bool, what string) {
	if !l.peers.Allow(peerlimit.PeerKey(p)) {
		return false, "peer " + p.String()
	}
	if !registered && addr != "" && !l.addrs.Allow(addr) {
		return false, "address " + addr
	}
	return true, ""
}
