package sync

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestHeldCopyKeepsItsReason: a copy of a stored message skips the
// signature check, yet is refused for the reason it always was: a blocked
// channel or an expired timestamp still wins over "duplicate".
func TestHeldCopyKeepsItsReason(t *testing.T) {
	w := newWriter(t)
	clk := newClock()
	var blocked atomic.Bool
	b := newNode(t, clk, func(c *Config) {
		c.Accept = func(peer.ID, channel.ID) bool { return !blocked.Load() }
	})
	x := newNode(t, nil)
	b.svc.Want(w.id())
	connect(t, x, b)
	eventually(t, "session up", func() bool { return sessionUp(b, x) })
	ctx := context.Background()
	msg := w.seal(t, "held", time.Now())
	if _, err := x.svc.PushTo(ctx, b.h.ID(), msg); err != nil {
		t.Fatalf("first push: %v", err)
	}
	steps := []struct {
		name   string
		before func()
		want   wirepb.Reason
	}{
		{"copy", func() {}, wirepb.Reason_REASON_DUPLICATE},
		{"copy in a blocked channel", func() { blocked.Store(true) }, wirepb.Reason_REASON_NOT_ACCEPTED},
		{"copy past the retention window", func() { blocked.Store(false); clk.Advance(8 * 24 * time.Hour) }, wirepb.Reason_REASON_EXPIRED},
	}
	for _, st := range steps {
		st.before()
		_, err := x.svc.PushTo(ctx, b.h.ID(), msg)
		var rj *RejectError
		if !errors.As(err, &rj) {
			t.Fatalf("%s: push: %v, want a RejectError", st.name, err)
		}
		if rj.Reason != st.want {
			t.Fatalf("%s: reason %s (%s), want %s", st.name, rj.Reason, rj.Detail, st.want)
		}
	}
}
