package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestOfflineCatchUp: Bob is offline while Alice posts in their channel
// through Bob's node; Bob reconnects and receives everything, in order,
// authors verified, once each.
func TestOfflineCatchUp(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	key, err := alice.Channels().Create("family")
	if err != nil {
		t.Fatal(err)
	}
	bobHome := home(t, "bob")
	bob, err := Open(Config{Home: bobHome, Create: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	bobID := bob.ID()
	if _, err := bob.Channels().Join("fam", key); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, ownedBy(t, bobID)) // Bob's home node
	addNodes(t, bob, n)
	connect(t, bob) // Bob registers as the owner (hop 0) ...
	if got := nodeOf(t, bob, n.Host.ID().String()); !got.Registered || got.Hop != 0 {
		t.Fatalf("owner's registration: %+v", got)
	}
	ticket(t, bob, alice)               // ... gives Alice a ticket ...
	if err := bob.Close(); err != nil { // ... and goes offline.
		t.Fatal(err)
	}
	addNodes(t, alice, n)
	connect(t, alice)

	const count = 25
	var sent []string
	ctx := context.Background()
	for i := range count {
		res, err := alice.Send(ctx, "family", fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.AckedBy) != 1 || res.AckedBy[0] != n.Host.ID().String() {
			t.Fatalf("send %d acked by %v, want the node", i, res.AckedBy)
		}
		sent = append(sent, res.ID)
	}

	bob = openClient(t, bobHome)
	if bob.ID() != bobID {
		t.Fatalf("identity changed across restart: %s, was %s", bob.ID(), bobID)
	}
	msgs, stop, err := bob.Subscribe("fam")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	connect(t, bob)
	// Listen gets each message once, author verified; the order of
	// arrival is the network's (bursts are sorted, but not across them),
	// so order is checked on History, which is what a chat view shows.
	got := collect(t, msgs, count)
	noMore(t, msgs)
	want := map[string]int{}
	for i, id := range sent {
		want[id] = i
	}
	for _, m := range got {
		i, ok := want[m.ID]
		if !ok || m.Text != fmt.Sprintf("message %d", i) || m.Author != alice.ID() || m.Mine || m.Channel != "fam" {
			t.Fatalf("got %+v, not one of Alice's messages", m)
		}
		delete(want, m.ID)
	}
	h, err := bob.History("fam", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != count {
		t.Fatalf("history holds %d messages, want %d", len(h), count)
	}
	for i, m := range h {
		if m.ID != sent[i] || m.Text != fmt.Sprintf("message %d", i) || m.Author != alice.ID() {
			t.Fatalf("history %d out of order or wrong: %+v", i, m)
		}
	}
	if last, _ := bob.History("fam", 3); len(last) != 3 || last[2].ID != sent[count-1] || last[0].ID != sent[count-3] {
		t.Fatalf("History(3) = %+v", last)
	}

	// Bob's client posted delivery receipts; Alice's history shows them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ah, err := alice.History("family", 0)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ah) == count
		for _, m := range ah {
			done = done && len(m.DeliveredTo) == 1 && m.DeliveredTo[0] == bobID
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipts never all arrived: %+v", ah)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeliveryOutlivesANode: Alice and Bob are registered at three nodes
// (Alice owns them and gave Bob a ticket), so each message reaches Bob up
// to three times; one node is killed while Alice keeps posting; every
// message reaches Bob exactly once, and Bob's own posts are still
// acknowledged by the survivors.
func TestDeliveryOutlivesANode(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	key, err := alice.Channels().Create("team")
	if err != nil {
		t.Fatal(err)
	}
	n3 := startNode(t, ownedBy(t, alice.ID()))
	n2 := startNode(t, ownedBy(t, alice.ID()), n3.Addrs()[0])
	n1 := startNode(t, ownedBy(t, alice.ID()), n2.Addrs()[0], n3.Addrs()[0])
	addNodes(t, alice, n1, n2, n3)
	connect(t, alice)

	bob := openClient(t, home(t, "bob"))
	if _, err := bob.Channels().Join("team", key); err != nil {
		t.Fatal(err)
	}
	ticket(t, alice, bob)
	addNodes(t, bob, n1, n2, n3)
	msgs, stop, err := bob.Subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	connect(t, bob)
	for _, n := range []*node.Node{n1, n2, n3} {
		if got := nodeOf(t, bob, n.Host.ID().String()); !got.Registered || got.Hop != 1 {
			t.Fatalf("Bob at %s: %+v", n.Host.ID(), got)
		}
	}

	ctx := context.Background()
	want := map[string]string{}
	send := func(i int) {
		t.Helper()
		res, err := alice.Send(ctx, "team", fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want[res.ID] = fmt.Sprintf("m%d", i)
	}
	for i := range 10 {
		send(i)
	}
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		send(i)
	}
	got := collect(t, msgs, 20)
	noMore(t, msgs)
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.ID] {
			t.Fatalf("message %s delivered twice", m.ID)
		}
		seen[m.ID] = true
		if want[m.ID] != m.Text || m.Author != alice.ID() {
			t.Fatalf("unexpected message %+v", m)
		}
	}

	res, err := bob.Send(ctx, "team", "still here")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.AckedBy {
		if p == n1.Host.ID().String() {
			t.Fatalf("acked by the killed node: %+v", res)
		}
	}
	if len(res.Failed) != 1 || len(res.AckedBy) != 2 {
		t.Fatalf("want exactly the killed node to fail: %+v", res)
	}
}

func TestMisuse(t *testing.T) {
	dir := home(t, "c")
	if _, err := Open(Config{Home: dir, Logger: quiet()}); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("open of an empty home: %v, want ErrNotInitialised", err)
	}
	c := openClient(t, dir)
	if _, err := Open(Config{Home: dir, Logger: quiet()}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	ctx := context.Background()
	key, err := c.Channels().Create("a")
	if err != nil {
		t.Fatal(err)
	}
	read, _ := c.Channels().Share("a", "read")
	tests := []struct {
		name string
		err  error
		fn   func() error
	}{
		{"send to unknown channel", ErrUnknownChannel, func() error { _, err := c.Send(ctx, "nope", "x"); return err }},
		{"history of unknown channel", ErrUnknownChannel, func() error { _, err := c.History("nope", 0); return err }},
		{"share unknown channel", ErrUnknownChannel, func() error { _, err := c.Channels().Share("nope", "read"); return err }},
		{"leave unknown channel", ErrUnknownChannel, func() error { return c.Channels().Leave("nope") }},
		{"same name twice", ErrChannelExists, func() error { _, err := c.Channels().Create("a"); return err }},
		{"same channel twice", ErrChannelExists, func() error { _, err := c.Channels().Join("b", key); return err }},
		{"empty name", ErrBadName, func() error { _, err := c.Channels().Create(""); return err }},
		{"name with space", ErrBadName, func() error { _, err := c.Channels().Create("a b"); return err }},
		{"bad key string", channel.ErrChecksum, func() error { _, err := c.Channels().Join("z", key[:len(key)-1]+"x"); return err }},
		{"connect without nodes", ErrNoNodes, func() error { return c.Connect(ctx) }},
		{"send without nodes", ErrNotDelivered, func() error { _, err := c.Send(ctx, "a", "x"); return err }},
		{"bad node address", nil, func() error { _, err := c.Nodes().Add("/ip4/127.0.0.1/tcp/1"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
	if _, err := c.Channels().Join("ro", read); !errors.Is(err, ErrChannelExists) {
		t.Fatalf("joining a weaker key of a channel already here: %v", err)
	}
	// The message sent without nodes is kept locally.
	if h, _ := c.History("a", 0); len(h) != 1 || h[0].Text != "x" || !h[0].Mine {
		t.Fatalf("history after an undelivered send: %+v", h)
	}
	if err := c.Channels().Leave("a"); err != nil {
		t.Fatal(err)
	}
	if chs, _ := c.Channels().List(); len(chs) != 0 {
		t.Fatalf("channels after leave: %+v", chs)
	}
}

// TestConcurrentSends: an app may post from many goroutines at once (a
// queue of posts after a reconnect, the chunks of a photo): one client's
// concurrent Sends share its one session with the node, and each returns
// acknowledged, with the node holding every message.
func TestConcurrentSends(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	if _, err := alice.Channels().Create("family"); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, ownedBy(t, alice.ID()))
	addNodes(t, alice, n)
	connect(t, alice)

	const count = 48
	ids := make([]string, count)
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := alice.Send(context.Background(), "family", fmt.Sprintf("message %d", i))
			if err == nil && (len(res.AckedBy) != 1 || res.AckedBy[0] != n.Host.ID().String()) {
				err = fmt.Errorf("send %d acked by %v, want the node", i, res.AckedBy)
			}
			if err != nil {
				errs <- err
				return
			}
			ids[i] = res.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, s := range ids {
		id, err := channel.ParseMessageID(s)
		if err != nil {
			t.Fatalf("send %d: ID %q: %v", i, s, err)
		}
		if seen[s] {
			t.Fatalf("send %d: ID %s twice", i, s)
		}
		seen[s] = true
		if ok, err := n.Store.Has(id); err != nil || !ok {
			t.Fatalf("send %d acknowledged, but the node does not hold %s (err %v)", i, s, err)
		}
	}
}
