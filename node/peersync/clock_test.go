package peersync

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// A node whose clock is not synchronised (a Pi without RTC, before NTP)
// must not reject messages by it; once the clock is trusted the window
// applies again.
func TestUntrustedClockSkipsTimeWindow(t *testing.T) {
	var trusted atomic.Bool
	n := newNode(t, nil, func(c *Config) { c.ClockTrusted = trusted.Load })
	w := newWriter(t)
	n.svc.Want(w.id())
	ctx := context.Background()

	future := w.seal(t, "from a phone whose clock is right", time.Now().Add(3*time.Hour))
	if _, err := n.svc.Publish(ctx, future); err != nil {
		t.Fatalf("untrusted clock: a message was rejected by time: %v", err)
	}
	trusted.Store(true)
	future2 := w.seal(t, "still from the future", time.Now().Add(3*time.Hour))
	if _, err := n.svc.Publish(ctx, future2); !errors.Is(err, channel.ErrFromFuture) {
		t.Fatalf("trusted clock: got %v, want ErrFromFuture", err)
	}
	// Signatures are checked whatever the clock says.
	trusted.Store(false)
	bad := w.seal(t, "forged", time.Now())
	bad.Signature[0] ^= 1
	if _, err := n.svc.Publish(ctx, bad); !errors.Is(err, channel.ErrBadSignature) {
		t.Fatalf("untrusted clock, bad signature: got %v, want ErrBadSignature", err)
	}
}
