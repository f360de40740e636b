package client

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/hint"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// startHomeNode runs a real home node with the DHT, owned by the client
// identity owner, in dir, on a fixed loopback port, knowing no peer: the
// friend graph is its only bootstrap.
func startHomeNode(t *testing.T, dir, owner string, port int) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{
		DataDir: dir,
		Routing: routing.Config{Owner: identity(t, owner), Logger: quiet()},
		P2P:     p2p.Config{ListenAddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}, Logger: quiet()},
		Logger:  quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func friendOf(n *node.Node, p peer.ID) (discovery.Friend, bool) {
	for _, f := range n.Discovery.Friends() {
		if f.ID == p {
			return f, true
		}
	}
	return discovery.Friend{}, false
}

// hintNodes decodes the hint a key string carries.
func hintNodes(t *testing.T, key string) []hint.Node {
	t.Helper()
	_, h, err := channel.ParseKeyHint(key)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return nil
	}
	ns, err := hint.Decode(h)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFriendsNodesFindEachOther is issue 18's first case with real nodes
// and real clients: Alice owns node A, Bob owns node B, and nothing
// connects A and B but what Alice hands Bob. Bob joins her channel by the
// key string she shares (it carries A's hint), his running client
// introduces A to B, B dials A, both prove the channel, and what Alice
// posts reaches Bob's running app. They keep each other when A restarts,
// and a channel agreed later by invitation works between them too.
func TestFriendsNodesFindEachOther(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	dirA, portA := t.TempDir(), testkit.FreePort(t)
	a := startHomeNode(t, dirA, alice.ID(), portA)
	b := startHomeNode(t, t.TempDir(), bob.ID(), testkit.FreePort(t))
	if _, err := alice.Channels().Create("fam"); err != nil {
		t.Fatal(err)
	}
	addNodes(t, alice, a)
	connect(t, alice)
	addNodes(t, bob, b)
	connect(t, bob)

	plain, err := alice.Channels().ShareKey("fam", "", false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := alice.Channels().Share("fam", "")
	if err != nil {
		t.Fatal(err)
	}
	if ns := hintNodes(t, plain); ns != nil {
		t.Fatalf("a key shared without a hint carries %v", ns)
	}
	ns := hintNodes(t, key)
	if len(ns) != 1 || ns[0].ID != a.Host.ID() || len(ns[0].Addrs) == 0 {
		t.Fatalf("Alice's key string names %v; her node is %s", ns, a.Host.ID())
	}
	if slices.Contains(a.Host.Network().Peers(), b.Host.ID()) {
		t.Fatal("A and B are connected before Bob joined")
	}

	msgs, stop, err := bob.Subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := bob.Channels().Join("fam", key); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitUntil(t, "A and B prove the channel to each other", func() bool {
		id := channelID(t, key)
		return b.Discovery.Authorized(a.Host.ID(), id) && a.Discovery.Authorized(b.Host.ID(), id)
	})
	if _, err := alice.Send(ctx, "fam", "hello Bob, from my node to yours"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, msgs, 1)[0]; m.Text != "hello Bob, from my node to yours" || m.Author != alice.ID() {
		t.Fatalf("Bob got %+v", m)
	}
	if f, ok := friendOf(b, a.Host.ID()); !ok || f.Introducers != 1 || f.Proved.IsZero() {
		t.Fatalf("B's entry for A: %+v %v", f, ok)
	}
	if f, ok := friendOf(a, b.Host.ID()); !ok || f.Proved.IsZero() {
		t.Fatalf("A's entry for B: %+v %v", f, ok)
	}
	waitUntil(t, "A is in B's DHT routing table", func() bool {
		return b.Discovery.DHT().RoutingTable().Find(a.Host.ID()) != ""
	})
	// Once introduced, nothing is due again until there is news (or a day
	// has passed): the client does not repeat itself every round.
	waitUntil(t, "Bob's introductions done", func() bool { return !bob.introductionsDue() })
	for range 3 {
		bob.noteOwnNodes()
		if bob.introductionsDue() {
			t.Fatalf("an introduction is due again with nothing new: %+v", bob.hintRecords())
		}
	}

	// A restarts on the same address; nobody introduces anything again.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = startHomeNode(t, dirA, alice.ID(), portA)
	waitUntil(t, "A, restarted, and B prove the channel again", func() bool {
		id := channelID(t, key)
		return b.Discovery.Authorized(a.Host.ID(), id) && a.Discovery.Authorized(b.Host.ID(), id)
	})
	waitUntil(t, "Alice's client is back at A", func() bool {
		n, err := alice.node(a.Host.ID())
		return err == nil && n.Connected && len(alice.Nodes().Connected()) > 0
	})
	if _, err := alice.Send(ctx, "fam", "still here after my node restarted"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, msgs, 1)[0]; m.Text != "still here after my node restarted" {
		t.Fatalf("Bob got %+v", m)
	}

	// A channel agreed by invitation: the answer carries B's hint, and
	// the two nodes prove the new channel too.
	inv, err := bob.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	ag, err := alice.Invites().Accept("pair", inv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Invites().Complete("pair", ag.Answer); err != nil {
		t.Fatal(err)
	}
	pair, err := channel.ParseID(ag.Channel.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "A and B prove the invited channel", func() bool {
		return b.Discovery.Authorized(a.Host.ID(), pair) && a.Discovery.Authorized(b.Host.ID(), pair)
	})
	if _, err := alice.Send(ctx, "pair", "and by invitation"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, msgs, 1)[0]; m.Text != "and by invitation" || m.Channel != "pair" {
		t.Fatalf("Bob got %+v", m)
	}
}

// TestInvitationHints: an invitation and its answer carry the home node
// of the side that wrote them; a client without one writes none.
func TestInvitationHints(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	a := startNode(t, ownedBy(t, alice.ID()))
	addNodes(t, alice, a)
	connect(t, alice)
	inv, err := alice.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	_, h, err := decodeInvite(inv, PrefixInvitation, 1+x25519Size)
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := hint.Decode(h); err != nil || len(ns) != 1 || ns[0].ID != a.Host.ID() {
		t.Fatalf("invitation hint: %v %v", ns, err)
	}
	ag, err := bob.Invites().Accept("", inv)
	if err != nil {
		t.Fatal(err)
	}
	if _, h, _ := decodeInvite(ag.Answer, PrefixAnswer, 1+inviteTagSize+x25519Size); h != nil {
		t.Fatalf("Bob has no node, but his answer carries a hint: %x", h)
	}
	recs := bob.hintRecords()
	if r, ok := recs[a.Host.ID()]; !ok || r.Source != "invitation" || len(r.Channels) != 1 || r.Channels[0] != ag.Channel.ID {
		t.Fatalf("Bob's record of Alice's node: %+v", recs)
	}
	if len(inv) > 140 || len(ag.Answer) > 160 {
		t.Fatalf("invitation %d, answer %d characters: no longer one SMS each", len(inv), len(ag.Answer))
	}
}

// TestTicketHint: a hop ticket names the issuer's node; a friend without
// a node of her own sets it and hears the owner there, with no `nodes
// add`.
func TestTicketHint(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	carol := openClient(t, home(t, "carol"))
	a := startNode(t, ownedBy(t, alice.ID()))
	key, err := alice.Channels().Create("fam")
	if err != nil {
		t.Fatal(err)
	}
	addNodes(t, alice, a)
	connect(t, alice)
	if _, err := carol.Channels().Join("fam", key); err != nil {
		t.Fatal(err)
	}
	ticket(t, alice, carol)
	n, err := carol.node(a.Host.ID())
	if err != nil || n.Source != "ticket" || len(n.Addrs) == 0 {
		t.Fatalf("Carol's record of A: %+v %v", n, err)
	}
	msgs, stop, err := carol.Subscribe("fam")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	connect(t, carol)
	if n, _ := carol.node(a.Host.ID()); !n.Registered || n.Hop != 1 {
		t.Fatalf("Carol at A: %+v", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := alice.Send(ctx, "fam", "welcome, Carol"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, msgs, 1)[0]; m.Text != "welcome, Carol" {
		t.Fatalf("Carol got %+v", m)
	}
}

// TestDeviceLinkHint: a device link names the identity's nodes, which the
// new device then knows.
func TestDeviceLinkHint(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	a := startNode(t, ownedBy(t, alice.ID()))
	addNodes(t, alice, a)
	connect(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, err := alice.Devices().Link(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	tablet, err := JoinDevice(ctx, Config{Home: home(t, "tablet"), Logger: quiet()}, link, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	defer tablet.Close()
	n, err := tablet.node(a.Host.ID())
	if err != nil || n.Source != "link" || len(n.Addrs) == 0 {
		t.Fatalf("the tablet's record of A: %+v %v", n, err)
	}
}

// TestBadHintsCostNothing: a key string whose hint does not decode still
// joins its channel (the hint is ignored); the hint table is bounded.
func TestBadHintsCostNothing(t *testing.T) {
	bob := openClient(t, home(t, "bob"))
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.StringWithHint([]byte("not a hint, but covered by the checksum"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Channels().Join("x", s); err != nil {
		t.Fatal(err)
	}
	if n := len(bob.hintRecords()); n != 0 {
		t.Fatalf("%d hint records from a bad hint", n)
	}
	for range maxHints + 10 {
		p := randomNode(t)
		bob.rememberNode(p.ID, p.Addrs, "key", []channel.ID{k.ID()})
	}
	if n := len(bob.hintRecords()); n != maxHints {
		t.Fatalf("%d hint records, bound %d", n, maxHints)
	}
	if !strings.HasPrefix(s, channel.PrefixFull) {
		t.Fatal(s)
	}
}

func randomNode(t *testing.T) hint.Node {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return hint.Node{ID: id, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/1")}}
}

// TestHintedStringSizes prints how long an invitation and its answer are
// with a hint of one and of two address entries, and checks each still
// fits one SMS (160 characters).
//
//	go test ./client -run TestHintedStringSizes -v
func TestHintedStringSizes(t *testing.T) {
	n := randomNode(t)
	for _, tc := range []struct {
		entries int
		addrs   []string
	}{
		{1, []string{"/ip4/192.168.1.20/tcp/4001", "/ip4/192.168.1.20/udp/4001/quic-v1"}},
		{2, []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/192.168.1.20/tcp/4001"}},
	} {
		n.Addrs = nil
		for _, a := range tc.addrs {
			n.Addrs = append(n.Addrs, multiaddr.StringCast(a))
		}
		h, err := hint.Encode([]hint.Node{n})
		if err != nil {
			t.Fatal(err)
		}
		// Base58 lengths vary by a character with the value: try a few.
		invMin, invMax, ansMin, ansMax := 1000, 0, 1000, 0
		for range 50 {
			pub := make([]byte, x25519Size+inviteTagSize)
			rand.Read(pub)
			inv := encodeInvite(PrefixInvitation, append(append([]byte{inviteVersion}, pub[:x25519Size]...), h...))
			ans := encodeInvite(PrefixAnswer, append(append([]byte{inviteVersion}, pub...), h...))
			invMin, invMax = min(invMin, len(inv)), max(invMax, len(inv))
			ansMin, ansMax = min(ansMin, len(ans)), max(ansMax, len(ans))
		}
		if invMax > 160 || ansMax > 160 {
			t.Fatalf("invitation up to %d, answer up to %d characters: more than one SMS", invMax, ansMax)
		}
		t.Logf("hint of %d address entries (%d B): invitation %d-%d characters, answer %d-%d", tc.entries, len(h), invMin, invMax, ansMin, ansMax)
	}
}

// TestOwnNodesBecomeFriends: a client registered at two nodes — its own
// and a friend's, from the friend's ticket — introduces each to the
// other; they prove the channels it shares through both.
func TestOwnNodesBecomeFriends(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	a := startHomeNode(t, t.TempDir(), alice.ID(), testkit.FreePort(t))
	b := startHomeNode(t, t.TempDir(), bob.ID(), testkit.FreePort(t))
	addNodes(t, alice, a)
	connect(t, alice)
	key, err := bob.Channels().Create("notes")
	if err != nil {
		t.Fatal(err)
	}
	addNodes(t, bob, b)
	ticket(t, alice, bob) // its hint makes A one of Bob's nodes
	connect(t, bob)
	if n, _ := bob.node(a.Host.ID()); !n.Registered || n.Hop != 1 {
		t.Fatalf("Bob at A: %+v", n)
	}
	id := channelID(t, key)
	waitUntil(t, "A and B, both Bob's nodes, prove his channel to each other", func() bool {
		return b.Discovery.Authorized(a.Host.ID(), id) && a.Discovery.Authorized(b.Host.ID(), id)
	})
	if f, ok := friendOf(b, a.Host.ID()); !ok || f.Introducers != 1 {
		t.Fatalf("B's entry for A: %+v %v", f, ok)
	}
	if f, ok := friendOf(a, b.Host.ID()); !ok || f.Introducers != 1 {
		t.Fatalf("A's entry for B: %+v %v", f, ok)
	}
}
