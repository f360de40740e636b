package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestDialOnlyClient: a dial-only client (a phone) listens on nothing,
// yet registers, sends and receives through its node as any client.
func TestDialOnlyClient(t *testing.T) {
	if _, err := Open(Config{Home: home(t, "bad"), Create: true, DialOnly: true, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()}); err == nil {
		t.Fatal("DialOnly with Listen opened")
	}
	phone, err := Open(Config{Home: home(t, "phone"), Create: true, DialOnly: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	if addrs := phone.h.Addrs(); len(addrs) != 0 {
		t.Fatalf("a dial-only client has addresses %v", addrs)
	}
	if ls := phone.h.Network().ListenAddresses(); len(ls) != 0 {
		t.Fatalf("a dial-only client listens on %v", ls)
	}
	friend := openClient(t, home(t, "friend"))
	n := startNode(t, ownedBy(t, phone.ID()))
	addNodes(t, phone, n)
	key, err := phone.Channels().Create("chat")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, phone)
	ticket(t, phone, friend)
	if _, err := friend.Channels().Join("chat", key); err != nil {
		t.Fatal(err)
	}
	addNodes(t, friend, n)
	connect(t, friend)
	in, stop, err := phone.Subscribe("chat")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := friend.Send(context.Background(), "chat", "to the phone"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, in, 1)[0]; m.Text != "to the phone" || m.Mine {
		t.Fatalf("phone got %+v", m)
	}
	if _, err := phone.Send(context.Background(), "chat", "from the phone"); err != nil {
		t.Fatal(err)
	}
	if got := waitHistory(t, friend, "chat", 2); got[1].Text != "from the phone" {
		t.Fatalf("friend's history: %+v", got)
	}
}

func waitHistory(t *testing.T, c *Client, name string, n int) []Message {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := c.History(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) >= n {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages in history: %+v", len(h), n, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextEvent reads events until one of kind arrives (a liveness bound, not
// a speed assertion).
func nextEvent(t *testing.T, ch <-chan Event, kind string) Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("events closed while waiting for %s", kind)
			}
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestEvents: a subscriber hears of the node connection, of a friend's
// receipt for its message and of the node going away, and its channel
// closes with the client.
func TestEvents(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	n := startNode(t, ownedBy(t, alice.ID()))
	nodeID := n.Host.ID().String()
	addNodes(t, alice, n)
	evs, stop, err := alice.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key, err := alice.Channels().Create("c")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, alice)
	if e := nextEvent(t, evs, EventNodeConnected); e.Node != nodeID || e.Detail == "" {
		t.Fatalf("connected event %+v, want node %s with its address", e, nodeID)
	}
	// A second subscriber is told what is connected already.
	late, stopLate, err := alice.Events()
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, late, EventNodeConnected); e.Node != nodeID {
		t.Fatalf("late subscriber's first event %+v", e)
	}
	stopLate()

	ticket(t, alice, bob)
	if _, err := bob.Channels().Join("c", key); err != nil {
		t.Fatal(err)
	}
	addNodes(t, bob, n)
	connect(t, bob)
	res, err := alice.Send(context.Background(), "c", "read me")
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, evs, EventReceipt); e.MessageID != res.ID || e.Reader != bob.ID() {
		t.Fatalf("receipt event %+v, want %s read by %s", e, res.ID, bob.ID())
	}
	n.Close()
	if e := nextEvent(t, evs, EventNodeDisconnected); e.Node != nodeID {
		t.Fatalf("disconnected event %+v", e)
	}
	alice.Close()
	for range evs { // drains, then closes
	}
	if _, _, err := alice.Events(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Events after Close: %v", err)
	}
}

// TestHistoryBefore pages back through a channel's history.
func TestHistoryBefore(t *testing.T) {
	c := openClient(t, home(t, "c"))
	if _, err := c.Channels().Create("c"); err != nil {
		t.Fatal(err)
	}
	const count = 23
	for i := range count {
		// No node: each is kept locally and is in the history at once.
		if _, err := c.Send(context.Background(), "c", fmt.Sprintf("m%02d", i)); !errors.Is(err, ErrNotDelivered) {
			t.Fatalf("send without nodes: %v", err)
		}
	}
	var texts []string
	before := ""
	for pages := 0; ; pages++ {
		page, err := c.HistoryBefore("c", before, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if pages != 5 {
				t.Fatalf("%d pages of 5 for %d messages", pages, count)
			}
			break
		}
		for i := len(page) - 1; i >= 0; i-- {
			texts = append(texts, page[i].Text)
		}
		before = page[0].ID
	}
	if len(texts) != count {
		t.Fatalf("paged %d messages, want %d", len(texts), count)
	}
	for i, s := range texts {
		if want := fmt.Sprintf("m%02d", count-1-i); s != want {
			t.Fatalf("message %d from the end is %q, want %q", i, s, want)
		}
	}
	for _, bad := range []struct {
		name, before string
		limit        int
		want         error
	}{
		{"c", "", 0, nil},
		{"c", "00", 5, ErrUnknownMessage},
		{"c", "1111111111111111111111111111111111111111111111111111111111111111", 5, ErrUnknownMessage},
		{"nope", "", 5, ErrUnknownChannel},
	} {
		_, err := c.HistoryBefore(bad.name, bad.before, bad.limit)
		if err == nil || (bad.want != nil && !errors.Is(err, bad.want)) {
			t.Errorf("HistoryBefore(%q, %q, %d) = %v, want %v", bad.name, bad.before, bad.limit, err, bad.want)
		}
	}
}

// TestRemoveNode: a removed node is forgotten with its owned mark, and
// its connection closes.
func TestRemoveNode(t *testing.T) {
	c := openClient(t, home(t, "c"))
	n := startNode(t, ownedBy(t, c.ID()))
	addNodes(t, c, n)
	connect(t, c)
	nodeID := n.Host.ID().String()
	if owned, err := c.Nodes().Owned(); err != nil || owned != nodeID {
		t.Fatalf("owned node %q, %v", owned, err)
	}
	if err := c.Nodes().Remove(nodeID); err != nil {
		t.Fatal(err)
	}
	if ns, _ := c.Nodes().List(); len(ns) != 0 {
		t.Fatalf("nodes after remove: %+v", ns)
	}
	if _, err := c.Nodes().Owned(); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("owned node after remove: %v", err)
	}
	if err := c.Nodes().Remove(nodeID); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("removing it again: %v", err)
	}
	if err := c.Nodes().Remove("not a peer id"); err == nil {
		t.Fatal("removed a node by a bad ID")
	}
}
