package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestFloodingChannelLimitedAndBlocked: a node with a per-channel rate
// limit refuses a flood in one channel with REASON_RATE_LIMITED while
// another channel keeps flowing; the flooded member blocks the channel
// and its sponsor branch is revoked at the node.
func TestFloodingChannelLimitedAndBlocked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := openClient(t, home(t, "owner"))
	n, err := node.New(node.Config{DataDir: t.TempDir(), Routing: ownedBy(t, owner.ID()), NoDHT: true,
		// The burst leaves room in the quiet channel for the 8 texts below
		// plus the adverts and receipts a client posts on its own.
		RateLimit: node.RateLimit{PerSecond: 0.001, Burst: 24},
		P2P:       p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	friend, spammer := openClient(t, home(t, "friend")), openClient(t, home(t, "spammer"))
	ticket(t, owner, friend)
	ticket(t, friend, spammer)
	floodKey, _ := spammer.Channels().Create("flood")
	if _, err := owner.Channels().Join("flood", floodKey); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Channels().Create("quiet"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{owner, friend, spammer} {
		addNodes(t, c, n)
		connect(t, c)
	}
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		_, err := spammer.Send(ctx, "flood", "buy now")
		// Send reports each node's refusal by its reason's name.
		limited = errors.Is(err, ErrNotDelivered) && strings.Contains(err.Error(), wirepb.Reason_REASON_RATE_LIMITED.String())
		if err != nil && !limited && !errors.Is(err, ErrNotDelivered) {
			t.Fatal(err)
		}
	}
	if !limited {
		t.Fatal("the flood was never rate limited")
	}
	for i := 0; i < 8; i++ { // past the flood's burst: other channels flow
		if _, err := owner.Send(ctx, "quiet", "still here"); err != nil {
			t.Fatalf("quiet channel message %d: %v", i, err)
		}
	}
	if err := owner.Channels().Block("flood"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Channels().Join("flood", floodKey); !errors.Is(err, ErrBlocked) {
		t.Fatalf("joining a blocked channel: %v", err)
	}
	revoked, err := n.Registry.Revoke(identity(t, friend.ID()))
	if err != nil || len(revoked) != 2 {
		t.Fatalf("revoking the sponsor's branch: %v, %v", revoked, err)
	}
	if _, err := owner.Send(ctx, "quiet", "after the revoke"); err != nil {
		t.Fatal(err)
	}
}
