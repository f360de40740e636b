package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
)

// byteTracer counts the bytes of every RPC a host queues for sending
// (protobuf plus its varint length prefix, as the sync counters count
// frames): summed over all hosts, every link's traffic in both directions.
type byteTracer struct{ n *atomic.Int64 }

func (t byteTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	sz := proto.Size(&rpc.RPC)
	t.n.Add(int64(sz + varintLen(sz)))
}

// The rest of pubsub.RawTracer: only SendRPC counts.
func (byteTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (byteTracer) OnClosedOutboundStream(peer.ID)                       {}
func (byteTracer) Join(string)                                          {}
func (byteTracer) Leave(string)                                         {}
func (byteTracer) Graft(peer.ID, string)                                {}
func (byteTracer) Prune(peer.ID, string)                                {}
func (byteTracer) ValidateMessage(*pubsub.Message)                      {}
func (byteTracer) DeliverMessage(*pubsub.Message)                       {}
func (byteTracer) RejectMessage(*pubsub.Message, string)                {}
func (byteTracer) DuplicateMessage(*pubsub.Message)                     {}
func (byteTracer) ThrottlePeer(peer.ID)                                 {}
func (byteTracer) RecvRPC(*pubsub.RPC)                                  {}
func (byteTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (byteTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (byteTracer) UndeliverableMessage(*pubsub.Message)                 {}

var _ pubsub.RawTracer = byteTracer{}

func varintLen(n int) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}

type gsPeer struct {
	h      host.Host
	ps     *pubsub.PubSub
	topics map[string]*pubsub.Topic
}

func newGossipPeer(ctx context.Context, h host.Host, count *atomic.Int64) (*gsPeer, error) {
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithRawTracer(byteTracer{n: count}))
	if err != nil {
		h.Close()
		return nil, err
	}
	return &gsPeer{h: h, ps: ps, topics: map[string]*pubsub.Topic{}}, nil
}

// subscribe joins topic and hands every message to fn.
func (g *gsPeer) subscribe(ctx context.Context, topic string, fn func(*pubsub.Message)) error {
	t, err := g.ps.Join(topic)
	if err != nil {
		return err
	}
	g.topics[topic] = t
	sub, err := t.Subscribe(pubsub.WithBufferSize(1 << 12))
	if err != nil {
		return err
	}
	go func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if fn != nil {
				fn(m)
			}
		}
	}()
	return nil
}

// relayGossipsub: S1 and S2 are gossipsub routers built like a node's
// host (node/p2p), subscribed to every pair's topic and running the same
// relay rule (channel.Validate) as a topic validator; clients connect to
// their node only; the payload is the same sealed envelope.
func relayGossipsub(ctx context.Context, p Params, load *relayLoad) (relayOutcome, error) {
	var o relayOutcome
	dir, err := os.MkdirTemp("", "rpbench-gossipsub-")
	if err != nil {
		return o, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bytes atomic.Int64
	var nodes [2]*gsPeer
	for i := range nodes {
		h, err := p2p.New(p2p.Config{DataDir: filepath.Join(dir, fmt.Sprint("s", i)),
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: p.Logger})
		if err != nil {
			return o, err
		}
		defer h.Close()
		if nodes[i], err = newGossipPeer(ctx, h, &bytes); err != nil {
			return o, err
		}
	}
	if err := nodes[1].h.Connect(ctx, addrInfo(nodes[0].h)); err != nil {
		return o, err
	}
	topic := func(i int) string { return fmt.Sprintf("rpbench/%d", i) }
	validate := func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		e, err := channel.UnmarshalEnvelope(m.Data)
		return err == nil && channel.Validate(e, time.Now(), channel.Policy{}) == nil
	}
	for _, n := range nodes {
		for i := range load.pairs {
			if err := n.ps.RegisterTopicValidator(topic(i), validate); err != nil {
				return o, err
			}
			if err := n.subscribe(ctx, topic(i), nil); err != nil {
				return o, err
			}
		}
	}
	lat := newLatencies(len(load.envs))
	clients := make([]*gsPeer, 2*len(load.pairs))
	for i := range clients {
		// From addresses of their own, as redPanda's clients (clientTransport).
		h, err := libp2p.New(libp2p.NoListenAddrs, clientTransport(),
			libp2p.Security(noise.ID, noise.New), libp2p.ResourceManager(&network.NullResourceManager{}),
			libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			return o, err
		}
		defer h.Close()
		c, err := newGossipPeer(ctx, h, &bytes)
		if err != nil {
			return o, err
		}
		clients[i] = c
		if err := h.Connect(ctx, addrInfo(nodes[i%2].h)); err != nil {
			return o, err
		}
		if err := c.subscribe(ctx, topic(i/2), func(m *pubsub.Message) { lat.deliver(rawID(m.Data), i) }); err != nil {
			return o, err
		}
	}
	// The mesh forms at heartbeats (1 s): wait until every router has both
	// its client and the other router in each topic, then two heartbeats.
	err = until(ctx, func() bool {
		for i := range load.pairs {
			for _, n := range nodes {
				if len(n.topics[topic(i)].ListPeers()) < 2 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return o, fmt.Errorf("mesh: %w", err)
	}
	time.Sleep(2500 * time.Millisecond)
	bytes.Store(0)
	var failed atomic.Int64
	schedule(ctx, lat, len(load.envs), load.every, func(k int, at time.Time) {
		from := load.pair[k]*2 + load.from[k]
		to := load.pair[k]*2 + 1 - load.from[k]
		lat.send(rawID(load.raw[k]), at, to)
		if err := clients[from].topics[topic(load.pair[k])].Publish(ctx, load.raw[k]); err != nil {
			failed.Add(1)
		}
	})
	lat.wait(ctx, 10*time.Second)
	o.median, o.p99, o.max, o.delivered = lat.stats()
	if o.delivered > 0 {
		o.bytesPerDelivery = float64(bytes.Load()) / float64(o.delivered)
	}
	if n := failed.Load(); n > 0 {
		return o, fmt.Errorf("%d publishes failed", n)
	}
	return o, nil
}
