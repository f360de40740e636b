package client

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestBlockGivesOldHistoryToLateMember: Alice wrote in a channel more
// than the relay window ago (no node keeps those messages); she posts a
// block; Carol, who joins later, reads that history from it, once.
func TestBlockGivesOldHistoryToLateMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var offset atomic.Int64
	offset.Store(int64(-9 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	alice, err := Open(Config{Home: home(t, "alice"), Create: true, Now: clock, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	key, err := alice.Channels().Create("club")
	if err != nil {
		t.Fatal(err)
	}
	old := []string{"nine days ago", "still nine days ago", "the last old one"}
	for _, s := range old {
		if _, err := alice.Send(ctx, "club", s); !errors.Is(err, ErrNotDelivered) {
			t.Fatalf("send with no node: %v", err)
		}
	}
	offset.Store(0)
	n := startNode(t, ownedBy(t, alice.ID()))
	addNodes(t, alice, n)
	connect(t, alice)
	res, err := alice.Channels().PostBlock(ctx, "club")
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != len(old) || res.Chunks != 1 {
		t.Fatalf("block: %+v", res)
	}

	carol := openClient(t, home(t, "carol"))
	ticket(t, alice, carol)
	if _, err := carol.Channels().Join("club", key); err != nil {
		t.Fatal(err)
	}
	addNodes(t, carol, n)
	connect(t, carol)
	waitFor(t, "the block's history at Carol", func() bool {
		h, _ := carol.History("club", 0)
		return len(h) >= len(old)
	})
	// The same block again adds nothing.
	cs, _ := carol.byName("club")
	if _, err := alice.Channels().PostBlock(ctx, "club"); err != nil {
		t.Fatal(err)
	}
	h, _ := carol.History("club", 0)
	for i, s := range old {
		if h[i].Text != s || h[i].Author != alice.ID() || time.Since(h[i].Timestamp) < 8*24*time.Hour {
			t.Fatalf("history[%d] = %+v", i, h[i])
		}
	}
	var again []BlockEntry
	for _, m := range h {
		id, _ := channel.ParseMessageID(m.ID)
		again = append(again, BlockEntry{ID: id, Timestamp: m.Timestamp.UnixMilli(), Author: alice.self.Public(), Text: m.Text})
	}
	if n, err := carol.mergeBlock(cs, encodeBlock(cs.key.ID(), alice.self, again)); err != nil || n != 0 {
		t.Fatalf("the same history again: %d added, %v", n, err)
	}
	if len(h) != len(old) {
		t.Fatalf("Carol has %d messages, want %d", len(h), len(old))
	}
}

// TestBlockRejected: a block whose hash does not match its contents, or
// is not signed by its creator, or is of another channel, adds nothing.
func TestBlockRejected(t *testing.T) {
	c := openClient(t, home(t, "reader"))
	key, err := c.Channels().Create("club")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := c.byName("club")
	author, _ := channel.NewIdentity(rand.Reader)
	entries := []BlockEntry{{ID: channel.MessageID{1}, Timestamp: 1000, Author: author.Public(), Text: "genuine"}}
	good := encodeBlock(cs.key.ID(), author, entries)
	tamper := func(f func(b []byte)) []byte { b := append([]byte{}, good...); f(b); return b }
	cases := []struct {
		name string
		b    []byte
	}{
		{"text changed, hash kept", tamper(func(b []byte) { b[len(b)-32-64-1] ^= 1 })},
		{"hash changed", tamper(func(b []byte) { b[len(b)-64-1] ^= 1 })},
		{"signature changed", tamper(func(b []byte) { b[len(b)-1] ^= 1 })},
		{"truncated", good[:len(good)-10]},
		{"another channel", encodeBlock(channel.ID{9}, author, entries)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.mergeBlock(cs, tc.b); !errors.Is(err, ErrBadBlock) {
				t.Fatalf("err = %v, want ErrBadBlock", err)
			}
			// Through the channel, as a member would post it.
			k, _ := channel.ParseKey(key)
			for _, chunk := range chunkBlock(tc.b) {
				e, err := k.Seal(author, channel.KindBlock, chunk, time.Now(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				c.process(e)
			}
			if h, _ := c.History("club", 0); len(h) != 0 {
				t.Fatalf("a bad block reached the history: %+v", h)
			}
		})
	}
	if n, err := c.mergeBlock(cs, good); err != nil || n != 1 {
		t.Fatalf("the untampered block: %d, %v", n, err)
	}
}

// TestBlockChunks: a block larger than one envelope travels in chunks
// that reassemble into it.
func TestBlockChunks(t *testing.T) {
	c := openClient(t, home(t, "reader"))
	if _, err := c.Channels().Create("big"); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.byName("big")
	var entries []BlockEntry
	text := string(make([]byte, 10_000))
	for i := range 20 {
		entries = append(entries, BlockEntry{ID: channel.MessageID{byte(i)}, Timestamp: int64(i), Author: c.self.Public(), Text: text})
	}
	chunks := chunkBlock(encodeBlock(cs.key.ID(), c.self, entries))
	if len(chunks) < 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	for i := len(chunks) - 1; i >= 0; i-- { // any order
		if err := c.blockChunk(cs, chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := c.History("big", 0); len(h) != len(entries) {
		t.Fatalf("%d of %d entries merged", len(h), len(entries))
	}
}
