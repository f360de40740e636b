package client

import (
	"context"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/routing"
)

// TestCommandsInARowStayRegistered: every one-shot command registers, and
// a node rate-limits registrations per device (a burst of
// routing.DefaultRequestBurst, then one per two seconds). Twice the burst
// in a row, as a script or a person pasting commands runs them, must all
// end registered with the channels of the moment, not refused.
func TestCommandsInARowStayRegistered(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a node's rate limit")
	}
	owner := openClient(t, home(t, "owner"))
	n := startNode(t, ownedBy(t, owner.ID()))
	addNodes(t, owner, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 2 * routing.DefaultRequestBurst {
		// A new channel each time: the node must learn each one.
		if _, err := owner.Channels().Create(string(rune('a' + i))); err != nil {
			t.Fatal(err)
		}
		if err := owner.Nodes().Update(ctx); err != nil {
			t.Fatal(err)
		}
		ns, err := owner.Nodes().List()
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 1 || !ns[0].Registered || ns[0].LastError != "" {
			t.Fatalf("registration %d: %+v", i+1, ns)
		}
		us := n.Registry.Users()
		if len(us) != 1 || len(us[0].Channels) < i+1 {
			t.Fatalf("registration %d: the node's users: %+v", i+1, us)
		}
	}
}
