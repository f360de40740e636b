package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/routing"
)

func nodeOf(t *testing.T, c *Client, id string) Node {
	t.Helper()
	ns, err := c.Nodes().List()
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
// Bob a ticket (hop 1); Bob issues Carol one (hop 2). M is a node that
// serves strangers (hop infinity). Carol knows only M, learns N from the
// advert Bob posts in their channel (hop 1 + 1), registers there with her
// chain at hop 2 and talks to Alice through N.
func TestRegistrationTicketsAndAdverts(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	carol := openClient(t, home(t, "carol"))
	key, err := alice.Channels().Create("trio")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{bob, carol} {
		if _, err := c.Channels().Join("trio", key); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, ownedBy(t, alice.ID()))
	reg := n.Registry
	m := startNode(t, routing.Config{AllowInfinity: true})

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

	chain, err := alice.Tickets().Issue(bob.ID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Tickets().Set(chain); !errors.Is(err, routing.ErrWrongSubject) {
		t.Fatalf("Carol set Bob's ticket: %v", err)
	}
	if tk, err := bob.Tickets().Set(chain); err != nil || tk.Hop != 1 || tk.Owner != alice.ID() {
		t.Fatalf("Bob's ticket: %+v, %v", tk, err)
	}
	addNodes(t, alice, n, m)
	connect(t, alice)
	if got := nodeOf(t, alice, n.Host.ID().String()); !got.Registered || got.Hop != 0 {
		t.Fatalf("owner's registration: %+v", got)
	}
	addNodes(t, bob, m)
	connect(t, bob)
	if got := nodeOf(t, bob, n.Host.ID().String()); !got.Registered || got.Hop != 1 || got.Capacity == 0 || got.Load != 2 {
		t.Fatalf("Bob's registration at N: %+v", got)
	}
	if got := nodeOf(t, bob, m.Host.ID().String()); !got.Registered || got.Hop != routing.HopInfinity {
		t.Fatalf("Bob's registration at M: %+v", got)
	}

	carolChain, err := bob.Tickets().Issue(carol.ID(), 7)
	if err != nil {
		t.Fatal(err)
	}
	// Without its node hint (as an older client prints it), so that Carol
	// has to learn N from an advert (TestTicketHint covers the hint).
	plain, err := routing.ParseChain(carolChain)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := carol.Tickets().Set(plain.String()); err != nil || tk.Hop != 2 {
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
		ns, _ := carol.Nodes().List()
		found := false
		for _, x := range ns {
			// Alice's advert (hop 0) would say 1, Bob's (hop 1) says 2;
			// either is a hint: the chain decides the real hop.
			found = found || (x.ID == nID && x.Source == "advert" && (x.Hop == 1 || x.Hop == 2))
		}
		// The node record is written a moment before the hint record
		// (handleAdverts): wait for both.
		if _, hinted := carol.hintRecords()[n.Host.ID()]; found && hinted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Carol never learned N from an advert: %+v", ns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And remembered it to introduce to her own nodes.
	if r, ok := carol.hintRecords()[n.Host.ID()]; !ok || r.Source != "advert" || len(r.Channels) != 1 || r.Channels[0] != channelID(t, key).String() {
		t.Fatalf("Carol's record of N to introduce: %+v %v", r, ok)
	}
	connect(t, carol) // now registers at N, the best by hop
	if got := nodeOf(t, carol, nID); !got.Registered || got.Hop != 2 {
		t.Fatalf("Carol's registration at N: %+v", got)
	}
	if got := nodeOf(t, carol, m.Host.ID().String()); !got.Registered || got.Hop != routing.HopInfinity {
		t.Fatalf("Carol at M: %+v", got)
	}
	if ns, _ := carol.Nodes().List(); ns[0].ID != nID {
		t.Fatalf("N (hop 2) is not Carol's best node: %+v", ns)
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
	if _, err := reg.Revoke(identity(t, bob.ID())); err != nil {
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
	key, _ := alice.Channels().Create("c")
	if _, err := bob.Channels().Join("c", key); err != nil {
		t.Fatal(err)
	}
	chain, _ := alice.Tickets().Issue(bob.ID(), 1)
	if _, err := bob.Tickets().Set(chain); err != nil {
		t.Fatal(err)
	}
	small := startNode(t, routing.Config{Owner: identity(t, alice.ID()), Capacity: 1})
	other := startNode(t, ownedBy(t, alice.ID()))

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
