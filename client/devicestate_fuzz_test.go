package client

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// stateSeeds are master-channel bodies of every kind, valid and nearly so.
func stateSeeds(f *testing.F) [][]byte {
	k := mustKeyF(f)
	by := "12D3KooWGRUVh2YsQ3ZWRDyRW3PSqZGtv5ix4KqqQ3gDJq9r3ngD"
	enc := func(dc deviceControl) []byte {
		b, _ := json.Marshal(dc)
		return append([]byte{control.Device}, b...)
	}
	items := []stateItem{
		{Kind: itemChannel, ID: k.ID().String(), At: 5, By: by, Name: "fam", Key: k.String()},
		{Kind: itemChannel, ID: k.ID().String(), At: 6, By: by, Gone: goneLeft},
		{Kind: itemChannel, ID: k.ID().String(), At: 7, By: by, Gone: goneBlocked, Name: "fam"},
		{Kind: itemNode, ID: by, At: 5, By: by, Addrs: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/192.168.1.2/udp/4001/quic-v1"}, Hop: 1},
		{Kind: itemNode, ID: by, At: 8, By: by, Gone: goneRemoved},
	}
	return [][]byte{
		enc(deviceControl{Op: opState, From: by, Items: items[:1]}),
		enc(deviceControl{Op: opState, From: by, Items: items, Snap: &snapPart{ID: "ab", Part: 0, Parts: 2, Link: "0123456789abcdef"}}),
		enc(deviceControl{Op: opState, From: by, Snap: &snapPart{ID: "ab", Part: 1, Parts: 2}}),
		enc(deviceControl{Op: opState, From: by, Items: items[1:2]}),
		enc(deviceControl{Op: opState, From: by, Items: items[3:]}),
		enc(deviceControl{Op: "device-join", From: by, Peer: by, Name: "tablet"}),
		enc(deviceControl{Op: "channel-add", From: by, Name: "old", Key: k.String()}),
		enc(deviceControl{Op: "channel-del", From: by, Name: "old"}),
		{'D', '{', '}'},
		[]byte(`D{"op":"state","from":"x","items":[{"k":"t","id":"rpi","at":1,"by":"x","chain":"rpt"}]}`),
	}
}

func mustKeyF(f *testing.F) *channel.Key {
	k, err := channel.KeyFromSecret(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzDeviceControl: a master-channel control body decodes or fails,
// never panics; what it accepts is within the bounds and decodes the
// same after encoding again.
func FuzzDeviceControl(f *testing.F) {
	for _, s := range stateSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := decodeDeviceControl(b)
		if err != nil {
			return
		}
		if len(b) > maxControlBytes || len(dc.Items) > maxStateItems {
			t.Fatalf("accepted %d bytes, %d items", len(b), len(dc.Items))
		}
		for _, it := range dc.Items {
			if it.check() != nil {
				t.Fatalf("accepted a bad item %+v", it)
			}
		}
		again, _ := json.Marshal(dc)
		dc2, err := decodeDeviceControl(append([]byte{control.Device}, again...))
		if err != nil {
			t.Fatalf("accepted, but not once encoded again: %v", err)
		}
		if dc2.Op != dc.Op || len(dc2.Items) != len(dc.Items) {
			t.Fatalf("round trip changed %+v into %+v", dc, dc2)
		}
	})
}

// FuzzApplyState: whatever another device of the identity posts in the
// master channel, applying it on a real client (store, channels, nodes)
// never panics, and the client's channels stay well named.
func FuzzApplyState(f *testing.F) {
	for _, s := range stateSeeds(f) {
		f.Add(s)
	}
	c, err := Open(Config{Home: f.TempDir(), Create: true, Logger: quiet(), FlushTimeout: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	if _, err := c.ensureMaster(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := decodeDeviceControl(b)
		if err != nil || dc.Op != opState {
			return
		}
		c.procMu.Lock()
		c.applyState(dc, &channel.Message{Author: c.self.Public(), Timestamp: time.Now()})
		c.procMu.Unlock()
		chs, err := c.Channels().List()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if checkName(ch.Name) != nil {
				t.Fatalf("channel named %q", ch.Name)
			}
		}
		if _, err := c.byName(MasterChannel); err != nil {
			t.Fatal("the master channel is gone")
		}
	})
}
