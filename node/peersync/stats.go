package peersync

import (
	"io"
	"sync/atomic"

	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// frameKinds names the Frame oneof cases by field number; index 0 is
// unused.
var frameKinds = [...]string{"", "hello", "want", "announce", "fetch", "body", "not_found", "push", "ack", "reject", "reconcile"}

func frameKind(f *wirepb.Frame) int {
	switch f.GetKind().(type) {
	case *wirepb.Frame_Hello:
		return 1
	case *wirepb.Frame_Want:
		return 2
	case *wirepb.Frame_Announce:
		return 3
	case *wirepb.Frame_Fetch:
		return 4
	case *wirepb.Frame_Body:
		return 5
	case *wirepb.Frame_NotFound:
		return 6
	case *wirepb.Frame_Push:
		return 7
	case *wirepb.Frame_Ack:
		return 8
	case *wirepb.Frame_Reject:
		return 9
	case *wirepb.Frame_Reconcile:
		return 10
	}
	return 0
}

// PeerStats counts one peer's sync traffic: bytes of frames (length
// prefixes included, libp2p's own framing and encryption excluded) and
// frames by kind ("hello", "body", ...). Dropped counts announcements not
// sent because the peer's queue was over its soft limit.
type PeerStats struct {
	BytesIn, BytesOut   uint64
	FramesIn, FramesOut map[string]uint64
	Dropped             uint64
	Rejected            uint64 // messages from this peer refused by the relay rule
}

type counters struct {
	bytesIn, bytesOut   atomic.Uint64
	framesIn, framesOut [len(frameKinds)]atomic.Uint64
	dropped, rejected   atomic.Uint64
}

func (c *counters) snapshot() PeerStats {
	ps := PeerStats{
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		FramesIn: map[string]uint64{}, FramesOut: map[string]uint64{},
		Dropped: c.dropped.Load(), Rejected: c.rejected.Load(),
	}
	for i := 1; i < len(frameKinds); i++ {
		if n := c.framesIn[i].Load(); n > 0 {
			ps.FramesIn[frameKinds[i]] = n
		}
		if n := c.framesOut[i].Load(); n > 0 {
			ps.FramesOut[frameKinds[i]] = n
		}
	}
	return ps
}

// countingReader counts the bytes read from the stream.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	return n, err
}
