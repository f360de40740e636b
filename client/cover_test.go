package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestDustLooksLikeText: a node (the network observer) stores a text
// message and a dust message; their outer fields have the same structure
// and size, and the dust never reaches the reader's history.
func TestDustLooksLikeText(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := openClient(t, home(t, "alice"))
	n := startNode(t, ownedBy(t, alice.ID()))
	addNodes(t, alice, n)
	if _, err := alice.Channels().Create("chat"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Cover().CreateChannel("bob"); err != nil {
		t.Fatal(err)
	}
	connect(t, alice)
	text, err := alice.Send(ctx, "chat", "see you at eight")
	if err != nil {
		t.Fatal(err)
	}
	dust, err := alice.Cover().Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	get := func(s string) *channel.Envelope {
		id, _ := channel.ParseMessageID(s)
		e, err := n.Store.Get(id)
		if err != nil {
			t.Fatalf("node store: %v", err)
		}
		return e
	}
	te, de := get(text.ID), get(dust.ID)
	raw := func(e *channel.Envelope) []byte { b, _ := e.MarshalBinary(); return b }
	checks := []struct {
		field      string
		text, dust any
	}{
		{"version", te.Version, de.Version},
		{"envelope size", te.Size(), de.Size()},
		{"encoded length", len(raw(te)), len(raw(de))},
		{"ciphertext length", len(te.Ciphertext), len(de.Ciphertext)},
		{"nonce length", len(te.Nonce), len(de.Nonce)},
		{"signature length", len(te.Signature), len(de.Signature)},
	}
	for _, c := range checks {
		if c.text != c.dust {
			t.Errorf("%s: text %v, dust %v", c.field, c.text, c.dust)
		}
	}
	if h, _ := alice.History(DustPrefix+"bob", 0); len(h) != 0 {
		t.Fatalf("dust in the history: %+v", h)
	}
}

func TestCoverTrafficOff(t *testing.T) {
	c := openClient(t, home(t, "c"))
	for _, cfg := range []CoverConfig{{}, {Enabled: true, Metered: true}} {
		if err := c.Cover().Run(context.Background(), cfg); !errors.Is(err, ErrCoverOff) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
}
