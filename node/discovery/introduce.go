package discovery

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
)

// IntroduceProtocol is how a registered user's client tells its home node
// about another super node it learned (from a hint in a key string, an
// invitation, a ticket or a device link, from an advert it read, or a
// node it registered at), with the channels the user believes that node
// serves. The home node keeps it in its friend table, dials it, proves
// its authorization for the shared channels, syncs them and uses it as a
// DHT bootstrap peer. Only registered users may introduce (docs/DHT.md).
//
// The client writes one frame: body length (2 bytes, big endian), then
// per introduction: hint length (1), a hint of exactly one node
// (package node/hint), channel count (1), channel IDs (32 each). The node
// answers one Verdict byte per introduction.
const IntroduceProtocol = protocol.ID("/redpanda/introduce/1.0.0")

// Bounds of an introduction frame.
const (
	MaxIntroductionsPerFrame = 16
	MaxIntroChannels         = 16
	maxIntroFrame            = MaxIntroductionsPerFrame * (1 + hint.MaxBytes + 1 + MaxIntroChannels*channel.IDSize)
)

// Introduction names a node and the channels the introducer believes it
// serves (none: use it as a DHT peer only).
type Introduction struct {
	Node     peer.AddrInfo
	Channels []channel.ID
}

// Verdict is a node's answer to one introduction.
type Verdict byte

// Verdicts.
const (
	// IntroAccepted: the node keeps the introduced node and dials it.
	IntroAccepted Verdict = 0
	// IntroRefused: the introducer is not a registered user of the node.
	IntroRefused Verdict = 1
	// IntroFull: the node's friend table is full of better entries.
	IntroFull Verdict = 2
	// IntroInvalid: not a node the node can use (itself, or no hint).
	IntroInvalid Verdict = 3
)

func (v Verdict) String() string {
	switch v {
	case IntroAccepted:
		return "accepted"
	case IntroRefused:
		return "refused: not a registered user"
	case IntroFull:
		return "refused: friend table full"
	case IntroInvalid:
		return "refused: not a usable node"
	}
	return fmt.Sprintf("verdict %d", byte(v))
}

// encodeIntroductions returns the frame of intros. Addresses a hint
// cannot carry are left out (hint.Pick keeps the best MaxEntries).
func encodeIntroductions(intros []Introduction) ([]byte, error) {
	if len(intros) > MaxIntroductionsPerFrame {
		return nil, fmt.Errorf("%w: %d introductions in one frame, at most %d", ErrMalformed, len(intros), MaxIntroductionsPerFrame)
	}
	b := make([]byte, 2, 2+len(intros)*64)
	for _, in := range intros {
		if len(in.Channels) > MaxIntroChannels {
			return nil, fmt.Errorf("%w: %d channels for one node, at most %d", ErrMalformed, len(in.Channels), MaxIntroChannels)
		}
		n, err := hint.Pick(in.Node.ID, in.Node.Addrs, hint.MaxEntries)
		if err != nil {
			return nil, err
		}
		h, err := hint.Encode([]hint.Node{n})
		if err != nil {
			return nil, err
		}
		b = append(b, byte(len(h)))
		b = append(b, h...)
		b = append(b, byte(len(in.Channels)))
		for _, ch := range in.Channels {
			b = append(b, ch[:]...)
		}
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b, nil
}

// readIntroductions reads one frame of at most maxIntroFrame bytes.
func readIntroductions(r io.Reader) ([]Introduction, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("introduction frame header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > maxIntroFrame {
		return nil, fmt.Errorf("%w: introduction frame of %d bytes, at most %d", ErrMalformed, n, maxIntroFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("introduction frame body: %w", err)
	}
	return decodeIntroductions(body)
}

// decodeIntroductions decodes a frame body; anything malformed fails the
// whole frame.
func decodeIntroductions(b []byte) ([]Introduction, error) {
	var out []Introduction
	for len(b) > 0 {
		if len(out) == MaxIntroductionsPerFrame {
			return nil, fmt.Errorf("%w: more than %d introductions in a frame", ErrMalformed, MaxIntroductionsPerFrame)
		}
		hl := int(b[0])
		b = b[1:]
		if hl > len(b) {
			return nil, fmt.Errorf("%w: introduction %d: hint of %d bytes, %d left", ErrMalformed, len(out), hl, len(b))
		}
		nodes, err := hint.Decode(b[:hl])
		if err != nil {
			return nil, fmt.Errorf("%w: introduction %d: %w", ErrMalformed, len(out), err)
		}
		if len(nodes) != 1 {
			return nil, fmt.Errorf("%w: introduction %d names %d nodes, want 1", ErrMalformed, len(out), len(nodes))
		}
		b = b[hl:]
		if len(b) < 1 {
			return nil, fmt.Errorf("%w: introduction %d: channel count missing", ErrMalformed, len(out))
		}
		nc := int(b[0])
		b = b[1:]
		if nc > MaxIntroChannels || nc*channel.IDSize > len(b) {
			return nil, fmt.Errorf("%w: introduction %d: %d channels, %d bytes left (at most %d channels)", ErrMalformed, len(out), nc, len(b), MaxIntroChannels)
		}
		in := Introduction{Node: nodes[0].AddrInfo()}
		for i := range nc {
			var ch channel.ID
			copy(ch[:], b[i*channel.IDSize:])
			in.Channels = append(in.Channels, ch)
		}
		b = b[nc*channel.IDSize:]
		out = append(out, in)
	}
	return out, nil
}

// Introduce tells node (a home node the client of h is registered at)
// about other nodes. It returns one Verdict per introduction; err is for
// failures of the exchange itself.
func Introduce(ctx context.Context, h host.Host, node peer.ID, intros []Introduction) ([]Verdict, error) {
	frame, err := encodeIntroductions(intros)
	if err != nil {
		return nil, fmt.Errorf("discovery.Introduce: %w", err)
	}
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), node, IntroduceProtocol)
	if err != nil {
		return nil, fmt.Errorf("discovery.Introduce: %w", err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if _, err := st.Write(frame); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("discovery.Introduce: %w", err)
	}
	reply := make([]byte, len(intros))
	if _, err := io.ReadFull(st, reply); err != nil {
		return nil, fmt.Errorf("discovery.Introduce: reply: %w", err)
	}
	out := make([]Verdict, len(reply))
	for i, v := range reply {
		out[i] = Verdict(v)
	}
	return out, nil
}

// serveIntroductions answers introductions; allow approves introducers
// (the node's registered users).
func (s *Service) serveIntroductions(allow func(peer.ID) bool) {
	s.h.SetStreamHandler(IntroduceProtocol, func(st network.Stream) {
		defer st.Close()
		p := st.Conn().RemotePeer()
		_ = st.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
		intros, err := readIntroductions(st)
		if err != nil {
			s.log.Info("introduction: bad frame", "peer", p, "err", err)
			_ = st.Reset()
			return
		}
		reply := make([]byte, len(intros))
		if !allow(p) {
			s.log.Info("introduction refused: peer is not a registered user", "peer", p, "nodes", len(intros))
			for i := range reply {
				reply[i] = byte(IntroRefused)
			}
			_, _ = st.Write(reply)
			return
		}
		changed := false
		for i, in := range intros {
			v, news := s.introduced(p, in)
			reply[i] = byte(v)
			changed = changed || news
		}
		if changed {
			s.saveFriends()
			s.kick(s.friendKick)
		}
		_, _ = st.Write(reply)
	})
}
