package routing

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestPruneBranch: pruning a channel revokes the sponsor of a hop-2 user
// (and so the whole branch below the owner's friend), the hop-1 user
// itself, never the owner, and leaves users of other channels alone.
func TestPruneBranch(t *testing.T) {
	f := newFriends(t)
	g1 := newIdentity(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), Capacity: 10})
	flood, calm := newChannelID(t), newChannelID(t)
	newClient(t, "owner", f.owner, nil).mustRegister(t, n, flood)
	newClient(t, "f1", f.f1, f.c1).mustRegister(t, n, calm)
	newClient(t, "f2", f.f2, f.c2).mustRegister(t, n, flood)
	newClient(t, "f3", f.f3, f.c3).mustRegister(t, n, calm)
	g1c := newClient(t, "g1", g1, Chain{issue(t, f.owner, g1.Public(), 1, time.Now().Add(time.Hour))})
	g1c.mustRegister(t, n, flood)

	var branch []channel.IdentityKey
	for _, u := range n.r.Branch(flood) {
		branch = append(branch, u.Identity)
	}
	if want := []channel.IdentityKey{f.owner.Public(), g1.Public(), f.f2.Public()}; !slices.Equal(branch, want) {
		t.Fatalf("branch %v, want owner, g1, f2 (lowest hop first)", branch)
	}

	removed, err := n.r.PruneBranch(flood)
	if err != nil {
		t.Fatal(err)
	}
	// g1 (hop 1) is revoked itself; f2 (hop 2) through its sponsor f1,
	// which takes f3 along although f3 asked only for the calm channel.
	want := []channel.IdentityKey{g1.Public(), f.f1.Public(), f.f2.Public(), f.f3.Public()}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want g1, f1, f2, f3", removed)
	}
	if got := users(n.r); !mapsEqual(got, map[channel.IdentityKey]int{f.owner.Public(): 0}) {
		t.Fatalf("left %v, want only the owner", got)
	}
	// Only the owner asks for the channel now: nothing left to prune.
	if _, err := n.r.PruneBranch(flood); !errors.Is(err, ErrNoBranch) {
		t.Fatalf("pruning again: %v, want ErrNoBranch", err)
	}
	if _, err := n.r.PruneBranch(newChannelID(t)); !errors.Is(err, ErrNoBranch) {
		t.Fatalf("pruning a channel nobody asked for: %v, want ErrNoBranch", err)
	}
}
