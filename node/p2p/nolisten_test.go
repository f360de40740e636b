package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// TestNoListen: a dial-only host has no listener and no address, and
// still dials a listening host; NoListen with ListenAddrs is refused.
func TestNoListen(t *testing.T) {
	if _, err := New(Config{DataDir: t.TempDir(), NoListen: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NoListen with ListenAddrs: %v, want ErrConfig", err)
	}
	phone, err := New(Config{DataDir: t.TempDir(), NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if ls, as := phone.Network().ListenAddresses(), phone.Addrs(); len(ls) != 0 || len(as) != 0 {
		t.Fatalf("dial-only host listens on %v, addresses %v", ls, as)
	}
	node, err := New(Config{DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	for _, a := range node.Addrs() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := phone.Connect(ctx, peer.AddrInfo{ID: node.ID(), Addrs: []multiaddr.Multiaddr{a}})
		cancel()
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		phone.Network().ClosePeer(node.ID())
		phone.Peerstore().ClearAddrs(node.ID())
	}
}
