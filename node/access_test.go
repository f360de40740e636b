package node

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
)

// TestAccessRule: the node's relay rule as one table, on a started node:
// itself, configured peers, the operator's channels, strangers, the
// caller's blocks over all of them, and the rate limit on what peers push.
func TestAccessRule(t *testing.T) {
	var served, blocked, other channel.ID
	for _, c := range []*channel.ID{&served, &blocked, &other} {
		rand.Read(c[:])
	}
	configured := startNode(t, t.TempDir(), other)
	n := startWith(t, Config{
		DataDir:   t.TempDir(),
		Peers:     configured.Addrs(),
		NoDHT:     true,
		Channels:  []channel.ID{served, blocked},
		Blocklist: blocklist{blocked: true},
		RateLimit: RateLimit{PerSecond: 0.001, Burst: 1},
	})
	a := newAccess(n)
	self, peerC, stranger := n.Host.ID(), configured.Host.ID(), testhost.NewPeerID(t)

	for _, tt := range []struct {
		name string
		p    peer.ID
		ch   channel.ID
		want bool
	}{
		{"itself, any channel", self, other, true},
		{"a configured peer, any channel", peerC, other, true},
		{"a stranger, an operator's channel", stranger, served, true},
		{"a stranger, another channel", stranger, other, false},
		{"a configured peer, a blocked channel", peerC, blocked, false},
		{"itself, a blocked channel", self, blocked, false},
	} {
		if got := a.Accept(tt.p, tt.ch); got != tt.want {
			t.Errorf("%s: Accept %v, want %v", tt.name, got, tt.want)
		}
	}
	if !a.Known(peerC) || a.Known(stranger) {
		t.Errorf("Known: configured %v, stranger %v; want true, false", a.Known(peerC), a.Known(stranger))
	}
	if err := a.Admit(stranger, served); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if err := a.Admit(stranger, served); !errors.Is(err, peersync.ErrRateLimited) {
		t.Fatalf("second message within the limit's period: %v, want ErrRateLimited", err)
	}
}

// blocklist is a Blocklist of fixed channels.
type blocklist map[channel.ID]bool

func (b blocklist) Blocked(ch channel.ID) bool { return b[ch] }
