package owner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/status"
)

func newHost(t *testing.T) host.Host { return hostAt(t, "127.0.0.1") }

func TestOwnerOnly(t *testing.T) {
	ownerPub, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	node, phone := newHost(t), newHost(t)
	srv := &Server{
		IsOwner: func(k ed25519.PublicKey) bool { return bytes.Equal(k, ownerPub) },
		Status: func(context.Context) (status.Report, error) {
			return status.Report{Node: status.Node{PeerID: node.ID().String()}, Version: "test"}, nil
		},
	}
	srv.Register(node)
	phone.Connect(context.Background(), peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()})
	ctx := context.Background()

	r, err := Status(ctx, phone, node.ID(), ownerKey)
	if err != nil || r.Node.PeerID != node.ID().String() || r.Version != "test" {
		t.Fatalf("owner's status: %+v, %v", r, err)
	}
	if _, err := Status(ctx, phone, node.ID(), strangerKey); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("stranger: %v, want ErrNotOwner", err)
	}
	if _, err := call(ctx, phone, node.ID(), ownerKey, Request{Cmd: "launch"}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown request: %v", err)
	}
}

// A proof made for one session does not open another: the signature
// covers the client's peer ID and the fresh challenge.
func TestProofBoundToSession(t *testing.T) {
	node, client := newHost(t), newHost(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var ch1, ch2 [32]byte
	ch2[0] = 1
	sig := ed25519.Sign(key, signedBytes(node.ID(), client.ID(), ch1[:]))
	pub := key.Public().(ed25519.PublicKey)
	if ed25519.Verify(pub, signedBytes(node.ID(), client.ID(), ch2[:]), sig) {
		t.Fatal("signature valid for another challenge")
	}
	other := newHost(t)
	if ed25519.Verify(pub, signedBytes(node.ID(), other.ID(), ch1[:]), sig) {
		t.Fatal("signature valid for another client peer")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := readFrame(bytes.NewReader(b), MaxFrame)
		if err == nil && len(out) > MaxFrame {
			t.Fatalf("frame of %d bytes accepted over the cap", len(out))
		}
	})
}
