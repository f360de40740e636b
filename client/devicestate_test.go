package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
)

func channelNames(t *testing.T, c *Client) []string {
	t.Helper()
	chs, err := c.Channels().List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chs {
		out = append(out, ch.Name)
	}
	return out
}

func hasChannel(t *testing.T, c *Client, name string) bool {
	return slices.Contains(channelNames(t, c), name)
}

func nodeByID(t *testing.T, c *Client, id string) (Node, bool) {
	t.Helper()
	ns, err := c.Nodes().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

func peerOf(n *node.Node) string { return n.Host.ID().String() }

// TestLinkedDeviceGetsTheIdentitysState: a phone owns a node, holds
// channels (one from before it had a master channel), a friend's node and
// the friend's ticket. A device joined with the phone's link string, and
// nothing else, gets all of it: the channels, both nodes (registered, at
// hop 0 and 1), the ticket, and hears messages in the channels. Later
// changes on either device (a channel made, left, blocked; a node
// removed) reach the other.
func TestLinkedDeviceGetsTheIdentitysState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	phone := openClient(t, home(t, "phone"))
	own := startNode(t, ownedBy(t, phone.ID()))
	friend := openClient(t, home(t, "friend"))
	theirs := startNode(t, ownedBy(t, friend.ID()))
	addNodes(t, friend, theirs)
	connect(t, friend)
	clubKey, err := friend.Channels().Create("club")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := phone.Channels().Create("fam"); err != nil { // before the master channel exists
		t.Fatal(err)
	}
	addNodes(t, phone, own)
	connect(t, phone)
	nodeKey, err := phone.Nodes().HomeKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.FollowOwner(nodeKey); err != nil {
		t.Fatal(err)
	}
	phone.postServeList()
	if _, err := phone.Channels().Create("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Channels().Join("club", clubKey); err != nil {
		t.Fatal(err)
	}
	ticket(t, friend, phone)
	addNodes(t, phone, theirs)
	link, err := phone.Devices().Link(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := phone.Flush(ctx); n != 0 || err != nil {
		t.Fatalf("phone flush: %d left, %v", n, err)
	}

	tablet, err := JoinDevice(ctx, Config{Home: home(t, "tablet"), Logger: quiet()}, link, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tablet.Close() })
	connect(t, tablet)
	if err := tablet.Devices().WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := channelNames(t, tablet), []string{"club", "fam", "work"}; !slices.Equal(got, want) {
		t.Fatalf("tablet channels %v, want %v", got, want)
	}
	waitFor(t, "the tablet registered at both nodes, at hop 0 and 1", func() bool {
		a, okA := nodeByID(t, tablet, peerOf(own))
		b, okB := nodeByID(t, tablet, peerOf(theirs))
		return okA && okB && a.Registered && a.Hop == 0 && b.Registered && b.Hop == 1
	})
	if ts, err := tablet.Tickets().List(); err != nil || len(ts) != 1 || ts[0].Owner != friend.ID() {
		t.Fatalf("tablet tickets %+v, %v", ts, err)
	}
	if o, err := tablet.Nodes().Owned(); err != nil || o != peerOf(own) {
		t.Fatalf("tablet owns %q, %v", o, err)
	}

	sub, stop, err := tablet.Subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := phone.Send(ctx, "fam", "dinner at 8"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, sub, 1)[0]; m.Text != "dinner at 8" || m.Channel != "fam" || !m.Mine {
		t.Fatalf("tablet got %+v", m)
	}
	if _, err := friend.Send(ctx, "club", "club news"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, sub, 1)[0]; m.Text != "club news" || m.Channel != "club" || m.Mine {
		t.Fatalf("tablet got %+v", m)
	}

	// Later changes, both ways.
	if _, err := phone.Channels().Create("later"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "channel later on the tablet", func() bool { return hasChannel(t, tablet, "later") })
	if _, err := phone.Send(ctx, "later", "made later"); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, sub, 1)[0]; m.Text != "made later" || m.Channel != "later" {
		t.Fatalf("tablet got %+v", m)
	}
	if _, err := tablet.Channels().Create("from-tablet"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "channel from-tablet on the phone", func() bool { return hasChannel(t, phone, "from-tablet") })
	if err := phone.Channels().Leave("work"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "work gone from the tablet", func() bool { return !hasChannel(t, tablet, "work") })
	if err := tablet.Channels().Block("club"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "club blocked on the phone", func() bool { return !hasChannel(t, phone, "club") })
	if _, err := phone.Channels().Join("club", clubKey); !errors.Is(err, ErrBlocked) {
		t.Fatalf("joining club on the phone after the tablet blocked it: %v", err)
	}
	if err := phone.Nodes().Remove(peerOf(theirs)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the friend's node gone from the tablet", func() bool { _, ok := nodeByID(t, tablet, peerOf(theirs)); return !ok })
	if got, want := channelNames(t, tablet), []string{"fam", "from-tablet", "later"}; !slices.Equal(got, want) {
		t.Fatalf("tablet channels %v, want %v", got, want)
	}
	if got, want := channelNames(t, phone), []string{"fam", "from-tablet", "later"}; !slices.Equal(got, want) {
		t.Fatalf("phone channels %v, want %v", got, want)
	}
}

// masterMessages returns the envelopes of c's master channel in its
// store, oldest first.
func masterMessages(t *testing.T, c *Client) []*channel.Envelope {
	t.Helper()
	cs, err := c.byName(MasterChannel)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := c.db.Headers(cs.key.ID(), 0, math.MaxInt64, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*channel.Envelope
	for _, h := range hs {
		e, err := c.db.Get(h.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// since runs fn and returns the master-channel messages it posted.
func since(t *testing.T, c *Client, fn func()) []*channel.Envelope {
	t.Helper()
	before := map[channel.MessageID]bool{}
	for _, e := range masterMessages(t, c) {
		before[e.ID()] = true
	}
	fn()
	var out []*channel.Envelope
	for _, e := range masterMessages(t, c) {
		if !before[e.ID()] {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		t.Fatal("nothing posted in the master channel")
	}
	return out
}

// deliver hands envelopes to c as the sync service would, one by one,
// processed before it returns.
func deliver(c *Client, es ...*channel.Envelope) {
	for _, e := range es {
		c.process(e)
	}
}

// twoDevices is a phone and a tablet of one identity with no node: the
// tests carry master-channel messages between them by hand, in any order.
func twoDevices(t *testing.T, now func() time.Time) (*Client, *Client) {
	t.Helper()
	ctx := context.Background()
	a, err := Open(Config{Home: home(t, "phone"), Create: true, Logger: quiet(), Now: now, FlushTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	link, err := a.Devices().Link(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := JoinDevice(ctx, Config{Home: home(t, "tablet"), Logger: quiet(), Now: now, FlushTimeout: -1}, link, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	deliver(b, masterMessages(t, a)...)
	if !b.Devices().HasState() {
		t.Fatal("the tablet did not take the phone's snapshot")
	}
	return a, b
}

// TestDeviceStateOrder: an old message delivered after a newer one does
// not undo it; the state converges whatever the order.
func TestDeviceStateOrder(t *testing.T) {
	a, b := twoDevices(t, nil)
	var key string
	add := since(t, a, func() {
		var err error
		if key, err = a.Channels().Create("x"); err != nil {
			t.Fatal(err)
		}
	})
	leave := since(t, a, func() {
		if err := a.Channels().Leave("x"); err != nil {
			t.Fatal(err)
		}
	})
	rejoin := since(t, a, func() {
		if _, err := a.Channels().Join("x", key); err != nil {
			t.Fatal(err)
		}
	})
	deliver(b, leave...)
	deliver(b, add...) // a replay of the older add
	if hasChannel(t, b, "x") {
		t.Fatal("an old add undid a newer leave")
	}
	deliver(b, rejoin...)
	if !hasChannel(t, b, "x") {
		t.Fatal("the newest change (a join again) did not win")
	}
	deliver(b, leave...)
	deliver(b, add...)
	if !hasChannel(t, b, "x") {
		t.Fatal("replays undid the newest change")
	}

	// A legacy channel-add of before versioned state, replayed later:
	// versioned by its envelope's time, it loses to what is newer.
	legacy := since(t, a, func() {
		a.postDevice(deviceControl{Op: "channel-add", Name: "old", Key: key})
	})
	if err := a.Channels().Leave("x"); err != nil {
		t.Fatal(err)
	}
	deliver(b, masterMessages(t, a)...)
	deliver(b, legacy...)
	if hasChannel(t, b, "x") || hasChannel(t, b, "old") {
		t.Fatalf("a legacy add replayed after a leave re-added the channel: %v", channelNames(t, b))
	}
}

// TestDeviceStateConflicts: two devices change the same thing at the same
// instant and end with the same winner; two channels of one name both
// stay; an item versioned far ahead of its message is ignored.
func TestDeviceStateConflicts(t *testing.T) {
	at := time.Now()
	a, b := twoDevices(t, func() time.Time { return at })
	shared := mustKey(t)
	ka := since(t, a, func() {
		if _, err := a.Channels().Join("both", shared.String()); err != nil {
			t.Fatal(err)
		}
	})
	deliver(b, ka...)
	if !hasChannel(t, b, "both") {
		t.Fatal("join did not reach the tablet")
	}
	// The same instant, both clocks (and seen versions) equal: a leaves,
	// b blocks. The version tie is broken by the device's peer ID.
	la := since(t, a, func() {
		if err := a.Channels().Leave("both"); err != nil {
			t.Fatal(err)
		}
	})
	lb := since(t, b, func() {
		if err := b.Channels().Block("both"); err != nil {
			t.Fatal(err)
		}
	})
	deliver(b, la...)
	deliver(a, lb...)
	ia, okA := a.loadItem([]byte(itemChannel + "/" + shared.ID().String()))
	ib, okB := b.loadItem([]byte(itemChannel + "/" + shared.ID().String()))
	if !okA || !okB || ia.At != ib.At || ia.By != ib.By || ia.Gone != ib.Gone {
		t.Fatalf("devices disagree: phone %+v, tablet %+v", ia, ib)
	}
	if a.blocked(shared.ID()) != b.blocked(shared.ID()) {
		t.Fatalf("blocked on the phone %v, on the tablet %v", a.blocked(shared.ID()), b.blocked(shared.ID()))
	}
	wantBlocked := ib.Gone == goneBlocked
	if wantBlocked != (b.PeerID() > a.PeerID()) {
		t.Fatalf("winner %+v; the larger peer ID should win a tie", ib)
	}

	// Same name, different channels, made at once: both kept.
	at = at.Add(time.Second)
	na := since(t, a, func() {
		if _, err := a.Channels().Create("trip"); err != nil {
			t.Fatal(err)
		}
	})
	nb := since(t, b, func() {
		if _, err := b.Channels().Create("trip"); err != nil {
			t.Fatal(err)
		}
	})
	deliver(b, na...)
	deliver(a, nb...)
	for _, c := range []*Client{a, b} {
		var trips []string
		for _, n := range channelNames(t, c) {
			if strings.HasPrefix(n, "trip") {
				trips = append(trips, n)
			}
		}
		if len(trips) != 2 || trips[0] != "trip" {
			t.Fatalf("trips on %s: %v", c.PeerID(), trips)
		}
	}

	// An item versioned far past its envelope's time (a broken clock, or
	// a forged version) is ignored.
	fk := mustKey(t)
	fut := since(t, a, func() {
		cs, _ := a.byName(MasterChannel)
		it := channelItem("future", fk)
		it.At, it.By = at.Add(2*maxItemLead).UnixMilli(), a.PeerID()
		a.postState(cs, []stateItem{it}, nil)
	})
	deliver(b, fut...)
	if hasChannel(t, b, "future") {
		t.Fatal("an item from the future was applied")
	}
}

func mustKey(t *testing.T) *channel.Key {
	t.Helper()
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSnapshotInParts: a state too large for one message is posted in
// parts, each within an envelope; the new device holds the state only
// once every part is applied.
func TestSnapshotInParts(t *testing.T) {
	a, err := Open(Config{Home: home(t, "phone"), Create: true, Logger: quiet(), FlushTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.ensureMaster(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 250 // of ~300 bytes each: two parts
	for i := range n {
		if err := a.addChannel(fmt.Sprintf("channel-with-a-name-as-long-as-a-name-can-be-to-fill-parts-%04d", i), mustKey(t)); err != nil {
			t.Fatal(err)
		}
	}
	var link string
	snap := since(t, a, func() {
		if link, err = a.Devices().Link(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	})
	parts := 0
	for _, e := range snap {
		cs, _ := a.byName(MasterChannel)
		m, err := cs.key.Open(e)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := decodeDeviceControl(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if dc.Op == opState && dc.Snap != nil {
			parts++
			if len(m.Body) > channel.MaxBody || len(dc.Items) > maxStateItems {
				t.Fatalf("part of %d bytes, %d items", len(m.Body), len(dc.Items))
			}
		}
	}
	if parts < 2 {
		t.Fatalf("%d channels in %d part(s)", n, parts)
	}
	b, err := JoinDevice(context.Background(), Config{Home: home(t, "tablet"), Logger: quiet(), FlushTimeout: -1}, link, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	deliver(b, snap[1:]...)
	if b.Devices().HasState() {
		t.Fatal("state held with a part missing")
	}
	deliver(b, snap[0])
	if !b.Devices().HasState() {
		t.Fatal("state not held with every part")
	}
	if got := len(channelNames(t, b)); got != n {
		t.Fatalf("tablet has %d channels, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := b.Devices().WaitState(ctx); err != nil {
		t.Fatal(err)
	}
}

// masterStateOnNode decodes the state items the node holds in the
// identity's master channel.
func masterStateOnNode(t *testing.T, n *node.Node, c *Client) []stateItem {
	t.Helper()
	cs, err := c.byName(MasterChannel)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := n.Store.Headers(cs.key.ID(), 0, math.MaxInt64, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []stateItem
	for _, h := range hs {
		e, err := n.Store.Get(h.ID)
		if err != nil {
			continue
		}
		m, err := cs.key.Open(e)
		if err != nil {
			t.Fatal(err)
		}
		if dc, err := decodeDeviceControl(m.Body); err == nil && dc.Op == opState {
			out = append(out, dc.Items...)
		}
	}
	return out
}

func holdsChannel(items []stateItem, name, gone string) bool {
	return slices.ContainsFunc(items, func(it stateItem) bool {
		return it.Kind == itemChannel && it.Name == name && it.Gone == gone
	})
}

// TestChangesOutliveTheCommand is `redpanda channel new|leave` as one-shot
// commands: open, change, close at once. The node holds the announcement
// afterwards. With the node down, Close gives up boundedly, the change
// stays in the outbox across restarts, and goes out when the client is
// next online.
func TestChangesOutliveTheCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := home(t, "phone")
	phone := openClient(t, h)
	dir := t.TempDir()
	n := startNodeAt(t, dir, "/ip4/127.0.0.1/tcp/0", ownedBy(t, phone.ID()))
	addr := n.Addrs()[0]
	addNodes(t, phone, n)
	connect(t, phone)
	nodeKey, err := phone.Nodes().HomeKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.FollowOwner(nodeKey); err != nil {
		t.Fatal(err)
	}
	if err := phone.Close(); err != nil {
		t.Fatal(err)
	}

	oneShot := func(fn func(c *Client)) {
		t.Helper()
		c, err := Open(Config{Home: h, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		fn(c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	oneShot(func(c *Client) {
		if _, err := c.Channels().Create("fam"); err != nil {
			t.Fatal(err)
		}
	})
	oneShot(func(c *Client) {
		if err := c.Channels().Leave("fam"); err != nil {
			t.Fatal(err)
		}
	})
	oneShot(func(c *Client) {
		items := masterStateOnNode(t, n, c)
		if !holdsChannel(items, "fam", "") || !holdsChannel(items, "fam", goneLeft) {
			t.Fatalf("the node holds %+v; want fam added and left", items)
		}
		if c.Pending() != 0 {
			t.Fatalf("%d messages left in the outbox", c.Pending())
		}
	})

	// The node goes away; the change is kept.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	oneShot(func(c *Client) {
		if _, err := c.Channels().Create("offline"); err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		defer fcancel()
		if left, err := c.Flush(fctx); left == 0 || err == nil {
			t.Fatalf("flush with the node down: %d left, %v", left, err)
		}
	})
	var pending int
	oneShot(func(c *Client) { pending = c.Pending() })
	if pending == 0 {
		t.Fatal("the outbox lost the change made while the node was down")
	}

	// The node is back (same identity, same port); the next run that
	// goes online delivers the change.
	n = startNodeAt(t, dir, strings.Split(addr, "/p2p/")[0], ownedBy(t, phone.ID()))
	if err := n.FollowOwner(nodeKey); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{Home: h, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect(t, c)
	waitFor(t, "the outbox delivered", func() bool { return c.Pending() == 0 })
	if items := masterStateOnNode(t, n, c); !holdsChannel(items, "offline", "") {
		t.Fatalf("the node holds %+v; want offline", items)
	}
}

// startNodeAt is startNode with a given data directory and listen
// address, so a test can stop a node and start it again.
func startNodeAt(t *testing.T, dir, listen string, rc routing.Config) *node.Node {
	t.Helper()
	rc.Logger = quiet()
	n, err := node.New(node.Config{DataDir: dir, Routing: rc, NoDHT: true,
		P2P: p2p.Config{ListenAddrs: []string{listen}, Logger: quiet()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestStateItemChecks: each kind of bad item is refused with a reason.
func TestStateItemChecks(t *testing.T) {
	k := mustKey(t)
	other := mustKey(t)
	by := "12D3KooWGRUVh2YsQ3ZWRDyRW3PSqZGtv5ix4KqqQ3gDJq9r3ngD"
	good := []stateItem{
		{Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Name: "a", Key: k.String()},
		{Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Gone: goneLeft},
		{Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Gone: goneBlocked, Name: "a"},
		{Kind: itemNode, ID: by, At: 1, By: by, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
		{Kind: itemNode, ID: by, At: 1, By: by, Gone: goneRemoved},
	}
	for _, it := range good {
		if err := it.check(); err != nil {
			t.Fatalf("%+v: %v", it, err)
		}
	}
	bad := map[string]stateItem{
		"no version":        {Kind: itemChannel, ID: k.ID().String(), By: by, Name: "a", Key: k.String()},
		"bad by":            {Kind: itemChannel, ID: k.ID().String(), At: 1, By: "x", Name: "a", Key: k.String()},
		"key of another ID": {Kind: itemChannel, ID: other.ID().String(), At: 1, By: by, Name: "a", Key: k.String()},
		"no name":           {Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Key: k.String()},
		"key with a leave":  {Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Gone: goneLeft, Key: k.String()},
		"unknown gone":      {Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Gone: "eaten"},
		"node fields":       {Kind: itemChannel, ID: k.ID().String(), At: 1, By: by, Name: "a", Key: k.String(), Hop: 2},
		"node no addrs":     {Kind: itemNode, ID: by, At: 1, By: by},
		"node bad addr":     {Kind: itemNode, ID: by, At: 1, By: by, Addrs: []string{"/nope"}},
		"node bad hop":      {Kind: itemNode, ID: by, At: 1, By: by, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Hop: 99},
		"node bad ID":       {Kind: itemNode, ID: "x", At: 1, By: by, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
		"ticket bad chain":  {Kind: itemTicket, ID: "rpi", At: 1, By: by, Chain: "x"},
		"unknown kind":      {Kind: "z", ID: "x", At: 1, By: by},
	}
	for name, it := range bad {
		if err := it.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A whole message: too many items, a bad snapshot part, no items.
	many := make([]stateItem, maxStateItems+1)
	for i := range many {
		many[i] = good[0]
	}
	for name, dc := range map[string]deviceControl{
		"too many items": {Op: opState, From: by, Items: many},
		"no items":       {Op: opState, From: by},
		"bad part":       {Op: opState, From: by, Items: good[:1], Snap: &snapPart{ID: "x", Part: 2, Parts: 2}},
		"bad item":       {Op: opState, From: by, Items: []stateItem{bad["no name"]}},
	} {
		b, _ := json.Marshal(dc)
		if _, err := decodeDeviceControl(append([]byte{control.Device}, b...)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestOneShotChannelReachesTheNode: a channel made by a one-shot command
// (open, create, close) is served by the owner's node afterwards: the
// statement for it is handed over before the client closes, as part of
// delivering the announcement.
func TestOneShotChannelReachesTheNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := home(t, "phone")
	phone := openClient(t, h)
	n := startDHTNode(t, ownedBy(t, phone.ID()), time.Now)
	addNodes(t, phone, n)
	connect(t, phone)
	if _, err := phone.Nodes().HomeKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := phone.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{Home: h, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.Channels().Create("fam")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := served(n, channelID(t, key)); !got[0] {
		t.Fatal("the node has no statement for a channel made by a one-shot command")
	}
}

// TestReceiptOutlivesTheReader: the reader closes the moment a message
// is shown (a `listen` stopped at once); its delivery receipt still
// reaches the sender.
func TestReceiptOutlivesTheReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := openClient(t, home(t, "alice"))
	n := startNode(t, ownedBy(t, alice.ID()))
	key, err := alice.Channels().Create("fam")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := Open(Config{Home: home(t, "bob"), Create: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.Channels().Join("fam", key); err != nil {
		t.Fatal(err)
	}
	ticket(t, alice, bob)
	addNodes(t, alice, n)
	addNodes(t, bob, n)
	connect(t, alice)
	connect(t, bob)
	msgs, stop, err := bob.Subscribe("fam")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	res, err := alice.Send(ctx, "fam", "read me")
	if err != nil {
		t.Fatal(err)
	}
	collect(t, msgs, 1)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Bob's receipt at Alice", func() bool {
		h, _ := alice.History("fam", 0)
		return len(h) == 1 && h[0].ID == res.ID && slices.Contains(h[0].DeliveredTo, bob.ID())
	})
}
