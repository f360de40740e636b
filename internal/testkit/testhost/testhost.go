// Package testhost starts real libp2p hosts for tests: on loopback, on a
// port the kernel picks, closed when the test ends. It is testkit's libp2p
// half, apart so that tests without libp2p do not link it. It must not
// know any package of this module.
package testhost

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// New starts a host listening on 127.0.0.1 TCP with libp2p's defaults and
// opts (which come after the listen address, so they can override it),
// and closes it when t ends.
func New(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// NewPeerID is a fresh peer ID with no host behind it, as a stranger
// makes one for free.
func NewPeerID(t testing.TB) peer.ID {
	t.Helper()
	_, pk, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
