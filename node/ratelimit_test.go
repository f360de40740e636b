package node

import (
	"errors"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
)

// TestChannelLimiter: each channel has its own bucket; a flooded channel
// is refused with peersync.ErrRateLimited while another still passes, and
// tokens come back with (injected) time.
func TestChannelLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newChannelLimiter(RateLimit{PerSecond: 2, Burst: 3}, func() time.Time { return now })
	flood, other := channel.ID{1}, channel.ID{2}
	steps := []struct {
		name    string
		ch      channel.ID
		advance time.Duration
		limited bool
	}{
		{"burst 1", flood, 0, false},
		{"burst 2", flood, 0, false},
		{"burst 3", flood, 0, false},
		{"over the burst", flood, 0, true},
		{"another channel is untouched", other, 0, false},
		{"still over", flood, 100 * time.Millisecond, true},
		{"one token back after 500 ms", flood, 400 * time.Millisecond, false},
		{"and spent", flood, 0, true},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		err := l.admit("", s.ch)
		if got := errors.Is(err, peersync.ErrRateLimited); got != s.limited {
			t.Fatalf("%s: limited = %v (err %v), want %v", s.name, got, err, s.limited)
		}
	}
}
