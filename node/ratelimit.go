package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
)

// RateLimit bounds how fast one channel's messages are taken in from
// peers (paper §4.5: whoever holds a channel's write key can flood it; a
// token bucket per channel keeps a flood from crowding out the others).
// Messages over the limit are refused with REASON_RATE_LIMITED; the
// sender, or reconciliation, tries again later. Zero PerSecond: no limit.
type RateLimit struct {
	// PerSecond is the sustained rate, in messages per second per channel.
	PerSecond float64
	// Burst is how many messages may arrive at once; default
	// DefaultRateBurst.
	Burst int
}

// DefaultRateBurst is RateLimit.Burst when left zero.
const DefaultRateBurst = 64

// maxLimiters bounds the buckets kept; past it, full (idle) buckets are
// dropped, as a new bucket is full anyway.
const maxLimiters = 1 << 16

// channelLimiter is a token bucket per channel.
type channelLimiter struct {
	cfg RateLimit
	now func() time.Time

	mu      sync.Mutex
	buckets map[channel.ID]*rate.Limiter
}

func newChannelLimiter(cfg RateLimit, now func() time.Time) *channelLimiter {
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultRateBurst
	}
	return &channelLimiter{cfg: cfg, now: now, buckets: map[channel.ID]*rate.Limiter{}}
}

// admit takes one token from ch's bucket or fails with
// peersync.ErrRateLimited. It is Access.Admit's limit.
func (l *channelLimiter) admit(_ peer.ID, ch channel.ID) error {
	now := l.now()
	l.mu.Lock()
	b := l.buckets[ch]
	if b == nil {
		if len(l.buckets) >= maxLimiters {
			l.pruneLocked(now)
		}
		b = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.buckets[ch] = b
	}
	ok := b.AllowN(now, 1)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: channel %s over %.3g messages/s (burst %d)", peersync.ErrRateLimited, ch, l.cfg.PerSecond, l.cfg.Burst)
	}
	return nil
}

func (l *channelLimiter) pruneLocked(now time.Time) {
	for ch, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.buckets, ch)
		}
	}
}
