package testhost

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }

// TestNew connects two hosts over loopback; the leak check in TestMain
// sees that their Cleanup closed them.
func TestNew(t *testing.T) {
	a, b := New(t), New(t, libp2p.DisableRelay())
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for _, ma := range a.Addrs() {
		if s := ma.String(); len(s) < 14 || s[:14] != "/ip4/127.0.0.1" {
			t.Errorf("listens on %s, not loopback", s)
		}
	}
}

func TestNewPeerID(t *testing.T) {
	a, b := NewPeerID(t), NewPeerID(t)
	if a == b || a.Validate() != nil {
		t.Fatalf("peer IDs %s and %s", a, b)
	}
}
