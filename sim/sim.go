package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/store"
)

// StatementValidity is how long the statements the members' clients hand
// their homes are valid (they renew them; a run is shorter).
const StatementValidity = 30 * 24 * time.Hour

// Home is one home node's box: its data directory (identity, store)
// outlives switching off; Node is nil while it is off.
type Home struct {
	I     int
	ID    peer.ID
	Dir   string
	Meter *Meter
	// opened counts the connections the home's node opened or accepted
	// (all its runs): what a connection made again costs is measured
	// against it.
	opened atomic.Int64
	// skew is added to the node's clock (a box whose clock is off).
	skew atomic.Int64

	mu       sync.Mutex
	node     *node.Node
	handed   bool // statements handed over (kept by the node across restarts)
	unsub    func()
	restarts int
}

// Node returns the running node, or nil while the home is off.
func (h *Home) Node() *node.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.node
}

// World is a running simulation: the network, the homes, the people and
// their channels, and what is being measured.
type World struct {
	cfg   Config
	nw    *Network
	g     *Graph
	homes []*Home
	log   *slog.Logger
	dir   string
	// wall is the real time the run began (read outside the bubble),
	// cpu the process's CPU time then.
	wall time.Time
	cpu  time.Duration

	track *tracker
	// phaseName tags the posts made now.
	phaseName atomic.Pointer[string]
	// notPosted counts posts a person could not make because their home
	// was off; refused, posts their home refused.
	notPosted, refused atomic.Int64
}

// newHomeIdentity writes home i's libp2p identity where the node looks
// for it, from the run's seeded stream, so that a seed gives the same
// peer IDs (and DHT layout) every run.
func newHomeIdentity(dir string, r io.Reader) (peer.ID, error) {
	sk, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		return "", err
	}
	raw, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, p2p.IdentityFileName), raw, 0o600); err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(sk)
}

// start builds and starts home h's node on the simulated network.
func (w *World) start(h *Home) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.node != nil {
		return nil
	}
	now := func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }
	n, err := node.New(node.Config{
		DataDir: h.Dir,
		P2P: p2p.Config{
			ListenAddrs: []string{w.nw.Addr(h.I)},
			ConnMgr:     p2p.ConnMgr{LowWater: w.cfg.ConnLow, HighWater: w.cfg.ConnHigh, GracePeriod: w.cfg.ConnGrace},
			Options: []libp2p.Option{
				w.nw.QUIC(h.I),
				// As in x/simlibp2p: the observed-address manager stalls a
				// synctest bubble; homes know their address anyway.
				libp2p.DisableIdentifyAddressDiscovery(),
				libp2p.BandwidthReporter(h.Meter),
			},
		},
		Discovery: discovery.Config{MaxLookupBackoff: w.cfg.MaxLookupBackoff, RefreshPeriod: w.cfg.RefreshPeriod},
		Store:     store.Options{},
		Now:       now,
		Logger:    w.log.With("home", h.I),
	})
	if err != nil {
		return fmt.Errorf("home %d: %w", h.I, err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		return fmt.Errorf("home %d: %w", h.I, err)
	}
	h.node = n
	n.Host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(network.Network, network.Conn) { h.opened.Add(1) },
	})
	h.unsub = w.track.watch(h.I, n)
	if !h.handed {
		if err := w.handOver(h, n); err != nil {
			return err
		}
		h.handed = true
	}
	return nil
}

// stop switches home h off: the network first (a power cut), then the
// node's process.
func (w *World) stop(h *Home) error {
	h.mu.Lock()
	n := h.node
	h.node = nil
	unsub := h.unsub
	h.mu.Unlock()
	if n == nil {
		return nil
	}
	w.nw.SetOff(h.I, true)
	if unsub != nil {
		unsub()
	}
	err := n.Close()
	h.mu.Lock()
	h.restarts++
	h.mu.Unlock()
	return err
}

// switchOn brings home h back: the network, then the node from its data
// directory (same identity, same store, its statements and the DHT peers
// it knew).
func (w *World) switchOn(h *Home) error {
	w.nw.SetOff(h.I, false)
	return w.start(h)
}

// handOver gives home h's node the serving statements its owners'
// clients issue for their channels (in the field: the hand-over protocol
// from a registered phone).
func (w *World) handOver(h *Home, n *node.Node) error {
	until := time.Now().Add(StatementValidity)
	for _, ch := range w.g.HomeChannels(h.I) {
		st, err := discovery.IssueStatement(ch.Key, h.ID, until)
		if err != nil {
			return err
		}
		if err := n.Discovery.Serve(st); err != nil {
			return fmt.Errorf("home %d: %w", h.I, err)
		}
	}
	// Serving nothing more re-reads the served set, as a hand-over does
	// (discovery.Node.HandedOver): sync now wants these channels.
	n.Serve()
	return nil
}

// introduce tells home a's node about home b, as a friend's node hint in
// a key string or invitation does (issue 18's introduction): b becomes a
// DHT bootstrap peer of a, and a proves to b that it serves ch and syncs
// it. This is the one place to switch to the node's introduction API.
func (w *World) introduce(ctx context.Context, a, b *Home, ch *Channel) error {
	na := a.Node()
	if na == nil {
		return errOff
	}
	pi := peer.AddrInfo{ID: b.ID, Addrs: w.addrs(b.I)}
	na.Discovery.AddBootstrap(pi)
	return na.Discovery.Connect(ctx, pi, ch.Key.ID())
}

var errOff = errors.New("sim: home is off")

// addrs are home i's addresses, as its node hint carries them.
func (w *World) addrs(i int) []multiaddr.Multiaddr {
	return []multiaddr.Multiaddr{multiaddr.StringCast(w.nw.Addr(i))}
}
