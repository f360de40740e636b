package sim

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/peersync"
)

// Kind is what a stream's bytes were for.
type Kind int

// Kinds of traffic, by protocol.
const (
	KindDHT      Kind = iota // /redpanda/kad/1.0.0
	KindSync                 // the sync protocol: friends' messages
	KindAuthz                // serving statements
	KindIdentify             // libp2p identify and push
	KindOther                // stream negotiation and the rest
	nKinds
)

var kindNames = [nKinds]string{"dht", "sync", "authz", "identify", "other"}

func (k Kind) String() string { return kindNames[k] }

func kindOf(p protocol.ID) Kind {
	switch {
	case p == discovery.ProtocolPrefix+"/kad/1.0.0":
		return KindDHT
	case p == peersync.ProtocolID:
		return KindSync
	case p == discovery.AuthzProtocol:
		return KindAuthz
	case strings.HasPrefix(string(p), "/ipfs/id/"):
		return KindIdentify
	}
	return KindOther
}

// Meter counts one host's stream bytes by Kind: the payload its protocols
// wrote and read, before QUIC's framing and encryption (Network.Wire has
// those). It is the host's libp2p bandwidth reporter, without
// go-flow-metrics' rate meters (a global goroutine and the real clock).
type Meter struct {
	sent, recv [nKinds]atomic.Int64
}

// Bytes returns the bytes sent and received for k so far.
func (m *Meter) Bytes(k Kind) (sent, recv int64) {
	return m.sent[k].Load(), m.recv[k].Load()
}

func (m *Meter) LogSentMessage(int64) {}
func (m *Meter) LogRecvMessage(int64) {}
func (m *Meter) LogSentMessageStream(n int64, p protocol.ID, _ peer.ID) {
	m.sent[kindOf(p)].Add(n)
}
func (m *Meter) LogRecvMessageStream(n int64, p protocol.ID, _ peer.ID) {
	m.recv[kindOf(p)].Add(n)
}
func (m *Meter) GetBandwidthForPeer(peer.ID) metrics.Stats         { return metrics.Stats{} }
func (m *Meter) GetBandwidthForProtocol(protocol.ID) metrics.Stats { return metrics.Stats{} }
func (m *Meter) GetBandwidthTotals() metrics.Stats                 { return metrics.Stats{} }
func (m *Meter) GetBandwidthByPeer() map[peer.ID]metrics.Stats     { return nil }
func (m *Meter) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats {
	return nil
}
func (m *Meter) Reset()             {}
func (m *Meter) TrimIdle(time.Time) {}

var _ metrics.Reporter = (*Meter)(nil)
