package attack

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/internal/loopback"
)

// newAttacker is a fresh libp2p host with its own peer ID, listening (and
// so dialling, through port reuse) on attacker i's source address,
// loopback.Packed(i): 127.1.X.Y, 250 per /24, so that many attackers come
// from many addresses and prefixes (the friend comes from 127.0.0.1).
func newAttacker(i int) (host.Host, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return libp2p.New(libp2p.Identity(priv),
		libp2p.ListenAddrStrings(loopback.ListenAddr(loopback.Packed(i))),
		libp2p.DisableRelay(), libp2p.NoTransports, libp2p.DefaultTransports,
		libp2p.DefaultMuxers, libp2p.DefaultSecurity)
}

// dialNode connects h to the node.
func dialNode(ctx context.Context, h host.Host, addr string) (peer.ID, error) {
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		return "", err
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := h.Connect(cctx, *ai); err != nil {
		return "", err
	}
	return ai.ID, nil
}

// attackers starts n attackers connected to the node, numbered from
// first; it closes them when ctx ends.
func attackers(ctx context.Context, first, n int, addr string) ([]host.Host, peer.ID, error) {
	var hs []host.Host
	var node peer.ID
	for i := range n {
		h, err := newAttacker(first + i)
		if err != nil {
			closeAll(hs)
			return nil, "", err
		}
		hs = append(hs, h)
		if node, err = dialNode(ctx, h, addr); err != nil {
			closeAll(hs)
			return nil, "", fmt.Errorf("attacker %d: %w", i, err)
		}
	}
	return hs, node, nil
}

func closeAll(hs []host.Host) {
	for _, h := range hs {
		_ = h.Close()
	}
}
