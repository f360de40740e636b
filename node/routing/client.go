package routing

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire"
)

// Result is a node's acceptance of a registration.
type Result struct {
	Hop     int       // HopInfinity without a chain
	Expires time.Time // re-register before then
	Load    Load      // the node's load after accepting
}

// Register asks node (already known to h's peerstore, or connected) to
// serve chs for self, proving self's hop with chain (nil: hop infinity).
// A refusal is a *RefusedError matching ErrRefused.
func Register(ctx context.Context, h host.Host, node peer.ID, self *channel.Identity, chain Chain, chs []channel.ID) (Result, error) {
	if len(chs) > MaxChannelsPerRequest {
		return Result{}, fmt.Errorf("routing.Register: %d channels, at most %d", len(chs), MaxChannelsPerRequest)
	}
	req := &request{Identity: self.Public(), Chain: chain, Channels: chs,
		Timestamp: time.UnixMilli(time.Now().UnixMilli()), Peer: h.ID(), Nonce: make([]byte, nonceSize)}
	if _, err := rand.Read(req.Nonce); err != nil {
		return Result{}, fmt.Errorf("routing.Register: %w", err)
	}
	req.sign(self)
	b, err := req.encode()
	if err != nil {
		return Result{}, fmt.Errorf("routing.Register: %w", err)
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), node, ProtocolID)
	if err != nil {
		return Result{}, fmt.Errorf("routing.Register: opening stream to %s: %w", node, err)
	}
	defer s.Close()
	deadline := time.Now().Add(streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := wire.WriteFrame(s, b); err != nil {
		return Result{}, fmt.Errorf("routing.Register: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return Result{}, fmt.Errorf("routing.Register: %w", err)
	}
	rb, err := wire.ReadFrame(s, MaxResponseSize)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Result{}, fmt.Errorf("routing.Register: reading answer from %s: %w", node, err)
	}
	resp, err := decodeResponse(rb)
	if err != nil {
		return Result{}, fmt.Errorf("routing.Register: %w", err)
	}
	if resp.Status != StatusOK {
		return Result{}, &RefusedError{Status: resp.Status, Detail: resp.Detail}
	}
	return Result{Hop: resp.Hop, Expires: resp.Expires, Load: resp.Load}, nil
}

// HandleNotices has h accept notices from nodes that ended a registration
// (evicted or revoked) and pass each to fn. Notice.Node is the node that
// sent it, as authenticated by the connection.
func HandleNotices(h host.Host, fn func(Notice)) {
	h.SetStreamHandler(NoticeProtocolID, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(streamTimeout))
		b, err := wire.ReadFrame(s, MaxResponseSize)
		if err != nil {
			s.Reset()
			return
		}
		n, err := decodeNotice(b)
		if err != nil {
			s.Reset()
			return
		}
		n.Node = s.Conn().RemotePeer()
		s.Close() // the node reads EOF as the receipt
		fn(n)
	})
}
