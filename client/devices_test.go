package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestThreeDevicesAndHomeNode: three devices of one identity and the
// identity's home node. A channel created on one device appears on the
// other two, a message sent from one appears on the others as the same
// author, and the node serves the channel knowing only its ID.
func TestThreeDevicesAndHomeNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := openClient(t, home(t, "phone"))
	n := startNode(t, ownedBy(t, a.ID()))
	addNodes(t, a, n)
	connect(t, a)
	link, err := a.Devices().Link(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := a.Nodes().ChannelKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.FollowOwner(nodeKey); err != nil {
		t.Fatal(err)
	}
	a.postServeList() // the node follows from now on: tell it again
	var devs []*Client
	for _, name := range []string{"tablet", "desktop"} {
		d, err := JoinDevice(ctx, Config{Home: home(t, name), Logger: quiet()}, link, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if d.ID() != a.ID() {
			t.Fatalf("%s has identity %s, want %s", name, d.ID(), a.ID())
		}
		addNodes(t, d, n)
		connect(t, d)
		devs = append(devs, d)
	}
	b, c := devs[0], devs[1]
	subA, stopA, _ := a.Subscribe("")
	defer stopA()
	subC, stopC, _ := c.Subscribe("")
	defer stopC()

	key, err := b.Channels().Create("trip")
	if err != nil {
		t.Fatal(err)
	}
	id := channelID(t, key)
	for _, d := range []*Client{a, c} {
		waitFor(t, "channel trip on another device", func() bool { _, err := d.Channels().Get("trip"); return err == nil })
	}
	waitFor(t, "the node serving trip", func() bool {
		for _, s := range n.Served() {
			if s == id {
				return true
			}
		}
		return false
	})
	if _, err := b.Send(ctx, "trip", "from the tablet"); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]<-chan Message{"phone": subA, "desktop": subC} {
		m := collect(t, sub, 1)[0]
		if m.Text != "from the tablet" || !m.Mine || m.Channel != "trip" {
			t.Fatalf("%s got %+v", name, m)
		}
	}
	// The node holds the trip messages but nothing that opens them: the
	// only key it was given is the node channel's, and what that channel
	// carries holds no key of trip.
	nk, _ := channel.ParseKey(nodeKey)
	secret, _ := channel.ParseKey(key)
	hs, err := n.Store.Headers(nk.ID(), 0, time.Now().Add(time.Hour).UnixMilli(), 0)
	if err != nil || len(hs) == 0 {
		t.Fatalf("node channel on the node: %d headers, %v", len(hs), err)
	}
	for _, h := range hs {
		e, err := n.Store.Get(h.ID)
		if err != nil {
			t.Fatal(err)
		}
		m, err := nk.Open(e)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m.Body, secret.Secret()) || strings.Contains(string(m.Body), key) {
			t.Fatal("the node channel carries trip's key")
		}
	}
	ths, _ := n.Store.Headers(id, 0, time.Now().Add(time.Hour).UnixMilli(), 0)
	if len(ths) == 0 {
		t.Fatal("the node holds no message of trip")
	}
	if e, _ := n.Store.Get(ths[0].ID); e != nil {
		if _, err := nk.Open(e); !errors.Is(err, channel.ErrWrongChannel) {
			t.Fatalf("node key on a trip message: %v", err)
		}
	}
	ds, err := a.Devices().List()
	if err != nil || len(ds) != 3 {
		t.Fatalf("devices on the phone: %+v, %v", ds, err)
	}
}

func TestDeviceLinkRejected(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	seed, master := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
	good := encodeLink(seed, master, now.Add(time.Minute), nil)
	flip := []byte(good)
	if flip[20] == 'a' {
		flip[20] = 'b'
	} else {
		flip[20] = 'a'
	}
	cases := []struct {
		name string
		s    string
		at   time.Time
		want error
	}{
		{"tampered", string(flip), now, ErrBadLink},
		{"truncated", good[:len(good)-3], now, ErrBadLink},
		{"other prefix", "rpx" + good[5:], now, ErrBadLink},
		{"expired", good, now.Add(2 * time.Minute), ErrLinkExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeLink(tc.s, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	s, m, err := decodeLink(good, now)
	if err != nil || !bytes.Equal(s, seed) || !bytes.Equal(m, master) {
		t.Fatalf("round trip: %v", err)
	}
}

// waitFor polls cond until it holds, failing after a generous liveness
// bound (not a speed assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
