package discovery

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// HandOverProtocol is how a member's client gives its super node the
// statements that let the node serve the member's channels (DESIGN.md:
// "obtained from a registered member").
const HandOverProtocol = "/redpanda/serve/1.0.0"

// Verdicts of a hand-over, one byte per statement in the reply.
const (
	handOverAccepted byte = 0
	handOverRefused  byte = 1
)

// serveHandOvers answers hand-overs: a statement is accepted only for a
// channel allow lists for the peer (the channels of its registration), so
// a stranger hands over nothing and a registrant at most its channel cap;
// statements must name this node.
func (s *Service) serveHandOvers(allow func(peer.ID) []channel.ID) {
	s.h.SetStreamHandler(HandOverProtocol, func(st network.Stream) {
		defer st.Close()
		p := st.Conn().RemotePeer()
		_ = st.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
		sts, err := readFrame(st)
		if err != nil {
			s.log.Debug("hand-over: bad frame", "peer", p, "err", err)
			_ = st.Reset()
			return
		}
		reply := make([]byte, len(sts))
		mine := allow(p)
		if len(mine) == 0 {
			s.log.Debug("hand-over refused: peer is not a registered user", "peer", p)
			for i := range reply {
				reply[i] = handOverRefused
			}
			st.Write(reply)
			return
		}
		now := s.cfg.Now()
		var added []channel.ID
		refused := 0
		for i, t := range sts {
			reply[i] = handOverRefused
			if !slices.Contains(mine, t.Channel) {
				refused++
				continue
			}
			if err := VerifyStatement(t, t.Channel, s.h.ID(), now); err != nil {
				s.log.Debug("hand-over: refused statement", "peer", p, "channel", short(t.Channel), "err", err)
				refused++
				continue
			}
			if err := s.serve(t, true); err != nil {
				refused++
				continue
			}
			reply[i] = handOverAccepted
			added = append(added, t.Channel)
		}
		if refused > 0 {
			s.log.Info("hand-over: statements refused", "peer", p, "refused", refused, "of", len(sts),
				"why", "not for a channel of the peer's registration, or invalid")
		}
		if len(added) > 0 {
			s.cfg.Node.HandedOver(added)
		}
		st.Write(reply)
	})
}

// HandOver gives node the statements (issued for node) so that it serves
// and provides their channels. It returns how many the node accepted.
func HandOver(ctx context.Context, h host.Host, node peer.ID, sts []*Statement) (int, error) {
	frame, err := encodeFrame(sts)
	if err != nil {
		return 0, err
	}
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), node, HandOverProtocol)
	if err != nil {
		return 0, fmt.Errorf("discovery.HandOver: %w", err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if _, err := st.Write(frame); err != nil {
		return 0, fmt.Errorf("discovery.HandOver: %w", err)
	}
	reply := make([]byte, len(sts))
	if _, err := io.ReadFull(st, reply); err != nil {
		return 0, fmt.Errorf("discovery.HandOver: reply: %w", err)
	}
	n := 0
	for _, v := range reply {
		if v == handOverAccepted {
			n++
		}
	}
	if n < len(sts) {
		return n, fmt.Errorf("%w: node accepted %d of %d statements", ErrNotAuthorized, n, len(sts))
	}
	return n, nil
}
