package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// withRegistry makes n a super node of owner: it serves the channels of
// whoever registers, as the appliance wires it.
func withRegistry(t *testing.T, n *node.Node, owner string) *routing.Registry {
	t.Helper()
	id, err := channel.ParseIdentityKey(owner)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := routing.NewRegistry(n.Host, n.Store.Meta("registrations"), routing.Config{Owner: id, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	reg.OnChange(func() { n.Serve(reg.Channels()...) })
	t.Cleanup(func() { reg.Close() })
	return reg
}

func nodeOf(t *testing.T, c *Client, id string) Node {
	t.Helper()
	ns, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("node %s not known: %+v", id, ns)
	return Node{}
}

// TestRegistrationTicketsAndAdverts: Alice owns node N (hop 0) and issues
// Bob a ticket (hop 1); Bob issues Carol one (hop 2). Carol knows only a
// stranger node M, learns N from Bob's advert in their channel at hop 2,
// registers there with her chain (hop 2) and talks to Alice through N.
func TestRegistrationTicketsAndAdverts(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	carol := openClient(t, home(t, "carol"))
	key, err := alice.CreateChannel("trio")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{bob, carol} {
		if _, err := c.JoinChannel("trio", key); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, t.TempDir(), nil)
	reg := withRegistry(t, n, alice.ID())
	m := startNode(t, t.TempDir(), []channel.ID{channelID(t, key)}, n.Addrs()[0])

	// Bob cannot register before he holds a ticket.
	addNodes(t, bob, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bob.register(ctx); err != nil {
		t.Fatal(err)
	}
	if got := nodeOf(t, bob, n.Host.ID().String()); got.Registered || got.LastError == "" {
		t.Fatalf("stranger Bob registered without a ticket: %+v", got)
	}

	chain, err := alice.IssueTicket(bob.ID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.SetTicket(chain); !errors.Is(err, routing.ErrWrongSubject) {
		t.Fatalf("Carol set Bob's ticket: %v", err)
	}
	if tk, err := bob.SetTicket(chain); err != nil || tk.Hop != 1 || tk.Owner != alice.ID() {
		t.Fatalf("Bob's ticket: %+v, %v", tk, err)
	}
	addNodes(t, alice, n)
	connect(t, alice)
	if got := nodeOf(t, alice, n.Host.ID().String()); !got.Registered || got.Hop != 0 {
		t.Fatalf("owner's registration: %+v", got)
	}
	connect(t, bob)
	if got := nodeOf(t, bob, n.Host.ID().String()); !got.Registered || got.Hop != 1 || got.Capacity == 0 || got.Load != 2 {
		t.Fatalf("Bob's registration: %+v", got)
	}

	carolChain, err := bob.IssueTicket(carol.ID(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := carol.SetTicket(carolChain); err != nil || tk.Hop != 2 {
		t.Fatalf("Carol's ticket: %+v, %v", tk, err)
	}
	// Carol reaches the channel only through the stranger node M, and
	// learns N from the adverts Bob posted there.
	addNodes(t, carol, m)
	cm, stop, err := carol.Subscribe("trio")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	connect(t, carol)
	nID := n.Host.ID().String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, _ := carol.Nodes()
		found := false
		for _, x := range ns {
			// Alice's advert (hop 0) says 1, Bob's (hop 1) says 2: the
			// best is kept. It is a hint: the chain decides the real hop.
			found = found || (x.ID == nID && x.Source == "advert" && x.Hop == 1)
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Carol never learned N from an advert: %+v", ns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	connect(t, carol) // now registers at N, the best by hop
	if got := nodeOf(t, carol, nID); !got.Registered || got.Hop != 2 {
		t.Fatalf("Carol's registration at N: %+v", got)
	}
	if got := nodeOf(t, carol, m.Host.ID().String()); got.Registered {
		t.Fatalf("registered at M, which has no registry: %+v", got)
	}
	users := map[string]int{}
	for _, u := range reg.Users() {
		users[u.Identity.String()] = u.Hop
	}
	if users[alice.ID()] != 0 || users[bob.ID()] != 1 || users[carol.ID()] != 2 || len(users) != 3 {
		t.Fatalf("N's users: %v", users)
	}

	res, err := alice.Send(context.Background(), "trio", "hi Carol")
	if err != nil {
		t.Fatal(err)
	}
	for {
		got := collect(t, cm, 1)[0]
		if got.ID == res.ID {
			if got.Author != alice.ID() {
				t.Fatalf("author %s", got.Author)
			}
			break
		}
	}

	// Revoking Bob ends Carol's registration too, and both are told why.
	if _, err := reg.Revoke(mustIdentity(t, bob.ID())); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		b, c := nodeOf(t, bob, nID), nodeOf(t, carol, nID)
		if !b.Registered && !c.Registered && b.LastError != "" && c.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation not noticed: Bob %+v, Carol %+v", b, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustIdentity(t *testing.T, s string) channel.IdentityKey {
	t.Helper()
	id, err := channel.ParseIdentityKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestEvictedClientMovesOn: Bob (hop 1) holds the only place at a node of
// capacity 1; the owner arrives, Bob is evicted and told why, and
// registers at the next best node on his own.
func TestEvictedClientMovesOn(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob, err := Open(Config{Home: home(t, "bob"), Create: true, MaxNodes: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	key, _ := alice.CreateChannel("c")
	if _, err := bob.JoinChannel("c", key); err != nil {
		t.Fatal(err)
	}
	chain, _ := alice.IssueTicket(bob.ID(), 1)
	if _, err := bob.SetTicket(chain); err != nil {
		t.Fatal(err)
	}
	small := startNode(t, t.TempDir(), nil)
	id, _ := channel.ParseIdentityKey(alice.ID())
	reg, err := routing.NewRegistry(small.Host, small.Store.Meta("registrations"), routing.Config{Owner: id, Capacity: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	other := startNode(t, t.TempDir(), nil)
	withRegistry(t, other, alice.ID())

	addNodes(t, bob, small)
	connect(t, bob)
	if got := nodeOf(t, bob, small.Host.ID().String()); !got.Registered {
		t.Fatalf("Bob at the small node: %+v", got)
	}
	addNodes(t, bob, other) // known, but Bob keeps one node
	addNodes(t, alice, small)
	connect(t, alice)

	deadline := time.Now().Add(30 * time.Second)
	for {
		s, o := nodeOf(t, bob, small.Host.ID().String()), nodeOf(t, bob, other.Host.ID().String())
		if !s.Registered && o.Registered && o.Hop == 1 {
			if !strings.Contains(s.LastError, "evicted") && !strings.Contains(s.LastError, "full") {
				t.Fatalf("eviction reason not kept: %q", s.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bob did not move on: small %+v, other %+v", s, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
