package p2p

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Bandwidth counts the bytes read from and written to the host's streams
// (what the protocols exchange, without the transports' own framing,
// encryption and retransmissions). It keeps totals only: libp2p's
// BandwidthCounter keeps a meter per peer and per protocol, which grows
// with every peer a public node ever meets.
type Bandwidth struct {
	in, out atomic.Int64
}

// Totals returns the bytes received and sent since the host started.
func (b *Bandwidth) Totals() (in, out int64) { return b.in.Load(), b.out.Load() }

// LogSentMessage implements metrics.Reporter.
func (b *Bandwidth) LogSentMessage(n int64) { b.out.Add(n) }

// LogRecvMessage implements metrics.Reporter.
func (b *Bandwidth) LogRecvMessage(n int64) { b.in.Add(n) }

// LogSentMessageStream implements metrics.Reporter; the swarm reports the
// same bytes to LogSentMessage, which counts them.
func (b *Bandwidth) LogSentMessageStream(int64, protocol.ID, peer.ID) {}

// LogRecvMessageStream implements metrics.Reporter (see
// LogSentMessageStream).
func (b *Bandwidth) LogRecvMessageStream(int64, protocol.ID, peer.ID) {}

// GetBandwidthTotals implements metrics.Reporter (no rates).
func (b *Bandwidth) GetBandwidthTotals() metrics.Stats {
	in, out := b.Totals()
	return metrics.Stats{TotalIn: in, TotalOut: out}
}

// GetBandwidthForPeer implements metrics.Reporter: not kept.
func (b *Bandwidth) GetBandwidthForPeer(peer.ID) metrics.Stats { return metrics.Stats{} }

// GetBandwidthForProtocol implements metrics.Reporter: not kept.
func (b *Bandwidth) GetBandwidthForProtocol(protocol.ID) metrics.Stats { return metrics.Stats{} }

// GetBandwidthByPeer implements metrics.Reporter: not kept.
func (b *Bandwidth) GetBandwidthByPeer() map[peer.ID]metrics.Stats { return nil }

// GetBandwidthByProtocol implements metrics.Reporter: not kept.
func (b *Bandwidth) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats { return nil }

// Reset implements metrics.Reporter; totals are never reset.
func (b *Bandwidth) Reset() {}

// TrimIdle implements metrics.Reporter; there is nothing per peer to trim.
func (b *Bandwidth) TrimIdle(time.Time) {}

var _ metrics.Reporter = (*Bandwidth)(nil)
