package routing

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/redpanda-p2p/homenode/node/wire"
)

// sendRaw sends exactly b as a request from h and returns the answer.
func sendRaw(t *testing.T, h host.Host, n *testNode, b []byte) *response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, n.info()); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, n.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := wire.WriteFrame(s, b); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	rb, err := wire.ReadFrame(s, MaxResponseSize)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := decodeResponse(rb)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A signed request replayed, stale, from another device, or tampered with
// is refused, and the client's next honest request still works.
func TestReplayAndSignature(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), RequestBurst: 20})
	dev, thief := newHost(t), newHost(t)
	build := func(ts time.Time, mutate func(*request)) []byte {
		r := &request{Identity: f.f1.Public(), Chain: f.c1, Channels: nil, Timestamp: time.UnixMilli(ts.UnixMilli()),
			Peer: dev.ID(), Nonce: make([]byte, nonceSize)}
		rand.Read(r.Nonce)
		r.sign(f.f1)
		if mutate != nil {
			mutate(r)
		}
		b, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signed := build(time.Now(), nil)
	if resp := sendRaw(t, dev, n, signed); resp.Status != StatusOK || resp.Hop != 1 {
		t.Fatalf("first send: %+v", resp)
	}
	tests := []struct {
		name   string
		from   host.Host
		b      []byte
		status Status
		detail string
	}{
		{"replayed", dev, signed, StatusReplay, "seen before"},
		{"replayed from another peer", thief, signed, StatusBadSignature, "bound to peer"},
		{"stale", dev, build(time.Now().Add(-10*time.Minute), nil), StatusReplay, "away from the node's clock"},
		{"from the future", dev, build(time.Now().Add(10*time.Minute), nil), StatusReplay, "away from the node's clock"},
		{"older than the registration", dev, build(time.Now().Add(-time.Minute), nil), StatusReplay, "older than the registration"},
		{"channels added after signing", dev, build(time.Now(), func(r *request) { r.Channels = append(r.Channels, newChannelID(t)) }), StatusBadSignature, "does not verify"},
		{"signed by another identity", dev, build(time.Now(), func(r *request) { r.sign(f.f2) }), StatusBadSignature, "does not verify"},
		{"garbage", dev, []byte("\x0a\x03abc"), StatusMalformed, "identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sendRaw(t, tt.from, n, tt.b)
			if resp.Status != tt.status || !strings.Contains(resp.Detail, tt.detail) {
				t.Fatalf("got %s %q, want %s containing %q", resp.Status, resp.Detail, tt.status, tt.detail)
			}
		})
	}
	if resp := sendRaw(t, dev, n, build(time.Now(), nil)); resp.Status != StatusOK {
		t.Fatalf("honest request after the attacks: %+v", resp)
	}
}
