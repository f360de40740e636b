package peersync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// rule is an Access as a node would answer it, recording what it was
// asked.
type rule struct {
	blocked, limited channel.ID
	mu               sync.Mutex
	admitted         map[channel.ID]int
}

func (r *rule) Accept(_ peer.ID, ch channel.ID) bool { return ch != r.blocked }

func (r *rule) Admit(_ peer.ID, ch channel.ID) error {
	r.mu.Lock()
	r.admitted[ch]++
	r.mu.Unlock()
	if ch == r.limited {
		return fmt.Errorf("%w: test limit", ErrRateLimited)
	}
	return nil
}

func (r *rule) Known(peer.ID) bool { return true }

func (r *rule) Opens(peer.ID) bool { return true }

// hooks is an Access of single functions for tests, each nil one
// answering as without a rule: accept everyone, admit every message,
// know every peer; opens answers as known unless set.
type hooks struct {
	accept func(peer.ID, channel.ID) bool
	admit  func(peer.ID, channel.ID) error
	known  func(peer.ID) bool
	opens  func(peer.ID) bool
}

func (h hooks) Accept(p peer.ID, ch channel.ID) bool { return h.accept == nil || h.accept(p, ch) }

func (h hooks) Admit(p peer.ID, ch channel.ID) error {
	if h.admit == nil {
		return nil
	}
	return h.admit(p, ch)
}

func (h hooks) Known(p peer.ID) bool { return h.known == nil || h.known(p) }

func (h hooks) Opens(p peer.ID) bool {
	if h.opens == nil {
		return h.Known(p)
	}
	return h.opens(p)
}

// TestAccessIsTheSeam: a service given Config.Access asks it, and only
// it, for every pushed message: Accept refuses a channel, Admit refuses
// one message with its reason, and what both allow is stored.
func TestAccessIsTheSeam(t *testing.T) {
	ok, blocked, limited := newWriter(t), newWriter(t), newWriter(t)
	r := &rule{blocked: blocked.id(), limited: limited.id(), admitted: map[channel.ID]int{}}
	b := newNode(t, nil, func(c *Config) {
		c.Access = r
	})
	x := newNode(t, nil)
	b.svc.Want(ok.id(), blocked.id(), limited.id())
	connect(t, x, b)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(b, x) })
	ctx := context.Background()

	good := ok.seal(t, "allowed", time.Now())
	if _, err := x.svc.PushTo(ctx, b.h.ID(), good); err != nil {
		t.Fatalf("push in an allowed channel: %v", err)
	}
	if !has(t, b, good.ID()) {
		t.Fatal("the allowed message was not stored")
	}
	for _, tt := range []struct {
		name string
		w    *writer
		want wirepb.Reason
	}{
		{"blocked", blocked, wirepb.Reason_REASON_NOT_ACCEPTED},
		{"rate limited", limited, wirepb.Reason_REASON_RATE_LIMITED},
	} {
		e := tt.w.seal(t, tt.name, time.Now())
		_, err := x.svc.PushTo(ctx, b.h.ID(), e)
		var rj *RejectError
		if !errors.As(err, &rj) || rj.Reason != tt.want {
			t.Fatalf("%s: push: %v, want %s", tt.name, err, tt.want)
		}
		if has(t, b, e.ID()) {
			t.Fatalf("%s: the refused message was stored", tt.name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.admitted[ok.id()] != 1 || r.admitted[limited.id()] != 1 || r.admitted[blocked.id()] != 0 {
		t.Fatalf("Admit asked %v: want once for the allowed and the limited message, never for the blocked one", r.admitted)
	}
}
