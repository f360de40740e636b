// Package node composes the redPanda protocol's parts into one super node:
// the libp2p host (node/p2p), the message store (node/store), the sync
// service (node/peersync) and the registrations of the light clients it serves
// (node/routing), plus the peers it keeps connected. It serves the
// channels its registered users ask for. It knows nothing of boards,
// systemd, routers or pairing: the appliance package adds those.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// StoreFile is the name of the message store inside the data directory.
const StoreFile = "messages.db"

// Defaults for Config fields left zero.
const (
	DefaultSweepInterval = 10 * time.Minute
	DefaultRedialMin     = 2 * time.Second
	DefaultRedialMax     = 10 * time.Second // however long a peer was down, redialled this soon after it is back
	DefaultCloseTimeout  = 20 * time.Second
)

// Config says how to build a node. Zero fields take the defaults noted.
type Config struct {
	// DataDir holds the identity, the store and nothing else of ours.
	// Required; created with mode 0700 when missing.
	DataDir string
	// Peers are multiaddrs ending in /p2p/ID that the node dials at start
	// and redials, with backoff, whenever the connection drops.
	Peers []string
	// Channels are served from the start (others are added with Serve).
	Channels []channel.ID
	// P2P builds the host; its DataDir defaults to DataDir.
	P2P p2p.Config
	// Store opens the store; Now defaults to Now below.
	Store store.Options
	// Sync runs the sync protocol; Now defaults to Now below. Its Access
	// is the node's relay rule (Access).
	Sync peersync.Config
	// Blocklist, if set, is the channels the operator blocks: the relay
	// rule refuses them to everyone (Access).
	Blocklist Blocklist
	// Routing serves registrations (owner, capacity, hop infinity); Now
	// defaults to Now below.
	Routing routing.Config
	// Discovery runs the DHT; the configured Peers are added to its
	// bootstrap peers, and its Meta, Now and hooks are the node's.
	Discovery discovery.Config
	// NoDHT leaves the DHT out (light tests and tools).
	NoDHT bool
	// RateLimit bounds each channel's intake from peers; zero: none.
	RateLimit RateLimit
	// RegistrantBytes bounds what the channels charged to one registrant
	// other than the owner may hold together (quota.go); 0: no limit of
	// their own.
	RegistrantBytes int64
	// SweepInterval is how often expired messages are deleted; default
	// 10 minutes.
	SweepInterval time.Duration
	// Now is the clock for the store and the relay rule; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Node is a running super node. Its fields are for the layers above
// (appliance, tests); the node owns them and closes them in Close.
//
// Host and Store exist from New on; Sync, Registry and Discovery from
// Start on, and are nil before (Discovery stays nil with Config.NoDHT).
// They are not made in New on purpose: each serves its protocol and
// starts its goroutines as it is made (peersync.New, routing.NewRegistry
// and discovery.New set stream handlers and start loops), while New
// promises that nothing is served until Start, and the registry must
// load with the owner SetOwner gives between New and Start. Their order
// in Start is fixed too: the relay rule (access.go) asks the registry
// and the DHT, so Sync comes last, and syncReady carries it to the DHT's
// callbacks that may run before it exists. Code that may run before
// Start (Close, serveRegistered, the appliance's relay ACL) checks for
// nil.
type Node struct {
	Host     host.Host
	Store    *store.DB
	Sync     *peersync.Service
	Registry *routing.Registry
	// Discovery is nil with Config.NoDHT.
	Discovery *discovery.Service

	cfg   Config
	log   *slog.Logger
	peers []peer.AddrInfo

	configured map[peer.ID]bool

	// opMu guards cfg.Channels, the channels the operator serves by hand;
	// the sync layer's Accept reads them, so it must not wait on mu.
	opMu sync.RWMutex
	// syncReady is Sync once it exists, for callbacks from goroutines
	// that started before it (the DHT's authorizations).
	syncReady atomic.Pointer[peersync.Service]

	// followMu guards the owner's node channel being followed.
	followMu     sync.Mutex
	followCancel context.CancelFunc
	followed     map[channel.ID]bool
	control      controlSet

	// serveMu serialises changes of the served set.
	serveMu  sync.Mutex
	served   map[channel.ID]bool
	regPeers map[peer.ID]bool // devices registered at the last change

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("node: closed")

// New opens the store and builds the host. Nothing is served until Start.
func New(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node.New: no data directory")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.P2P.DataDir == "" {
		cfg.P2P.DataDir = cfg.DataDir
	}
	if cfg.P2P.Logger == nil {
		cfg.P2P.Logger = cfg.Logger
	}
	if cfg.Store.Now == nil {
		cfg.Store.Now = cfg.Now
	}
	if cfg.Store.Logger == nil {
		cfg.Store.Logger = cfg.Logger
	}
	if cfg.Sync.Now == nil {
		cfg.Sync.Now = cfg.Now
	}
	if cfg.Sync.Logger == nil {
		cfg.Sync.Logger = cfg.Logger
	}
	if cfg.Sync.Retention == 0 {
		cfg.Sync.Retention = cfg.Store.Retention
	}
	if cfg.Routing.Now == nil {
		cfg.Routing.Now = cfg.Now
	}
	if cfg.Routing.Logger == nil {
		cfg.Routing.Logger = cfg.Logger
	}
	peers, err := parsePeers(cfg.Peers)
	if err != nil {
		return nil, fmt.Errorf("node.New: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node.New: data directory: %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, StoreFile), cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("node.New: %w", err)
	}
	h, err := p2p.New(cfg.P2P)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("node.New: %w", err)
	}
	configured := map[peer.ID]bool{}
	for _, pi := range peers {
		configured[pi.ID] = true
	}
	return &Node{
		Host:       h,
		Store:      db,
		cfg:        cfg,
		log:        cfg.Logger.With("component", "node"),
		peers:      peers,
		configured: configured,
	}, nil
}

// parsePeers turns multiaddrs with a /p2p/ component into AddrInfos,
// merging addresses of the same peer.
func parsePeers(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]multiaddr.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		ma, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("peer address %q: %w", s, err)
		}
		mas = append(mas, ma)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("peer addresses must end in /p2p/PEER-ID: %w", err)
	}
	return infos, nil
}

// Start starts the sync service, serves the configured channels, starts
// the retention sweeper and keeps the configured peers connected. The
// node runs until Close; ctx bounds only the start itself.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.started {
		return errors.New("node.Start: already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	reg, err := routing.NewRegistry(n.Host, n.Store.Meta("registrations"), n.cfg.Routing)
	if err != nil {
		return fmt.Errorf("node.Start: %w", err)
	}
	n.Registry = reg
	if !n.cfg.NoDHT {
		dc := n.cfg.Discovery
		dc.Bootstrap = append(dc.Bootstrap, n.peers...)
		dc.Meta = n.Store.Meta("dht")
		if dc.Now == nil {
			dc.Now = n.cfg.Now
		}
		if dc.Logger == nil {
			dc.Logger = n.cfg.Logger
		}
		dc.Node = discoveryNode{n: n, reg: reg}
		disc, err := discovery.New(n.Host, dc)
		if err != nil {
			reg.Close()
			return fmt.Errorf("node.Start: %w", err)
		}
		n.Discovery = disc
	}
	n.started = true
	// The relay rule is one seam.
	scfg := n.cfg.Sync
	scfg.Access = newAccess(n)
	n.Sync = peersync.New(n.Host, n.Store, scfg)
	n.syncReady.Store(n.Sync)
	n.served = map[channel.ID]bool{}
	reg.OnChange(n.serveRegistered)
	n.serveRegistered()
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.Store.RunSweeper(runCtx, n.cfg.SweepInterval)
	}()
	for _, pi := range n.peers {
		p2p.Protect(n.Host, pi.ID, "configured-peer")
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.keepConnected(runCtx, pi)
		}()
	}
	n.log.Info("node started", "peer", n.Host.ID().String(), "addrs", n.Addrs(), "peers", len(n.peers))
	return nil
}

// SetOwner makes id the owner (hop 0) of the registrations the node
// serves. Called before Start, it is the owner the registry loads with, so
// that the registrations the owner's pairing and ticket chains admitted
// are served from the first moment after a restart; after Start it
// re-pairs the running registry (routing.Registry.SetOwner).
func (n *Node) SetOwner(id channel.IdentityKey) error {
	n.mu.Lock()
	if !n.started {
		n.cfg.Routing.Owner = id
		n.mu.Unlock()
		return nil
	}
	reg := n.Registry
	n.mu.Unlock()
	if err := reg.SetOwner(id); err != nil {
		return fmt.Errorf("node.SetOwner: %w", err)
	}
	return nil
}

// Serve adds channels this node stores, relays and reconciles, beside
// those its registered users ask for, open to every peer.
func (n *Node) Serve(chs ...channel.ID) {
	n.opMu.Lock()
	n.cfg.Channels = append(n.cfg.Channels, chs...)
	n.opMu.Unlock()
	n.serveRegistered()
}

// serveRegistered makes the served channels the operator's, every
// registered user's and those handed over with statements, as they come
// and go. Sync's Want and Unwant run outside every lock Accept takes.
func (n *Node) serveRegistered() {
	n.serveMu.Lock()
	defer n.serveMu.Unlock()
	if n.Sync == nil {
		return
	}
	want := map[channel.ID]bool{}
	n.opMu.RLock()
	operator := slices.Clone(n.cfg.Channels)
	n.opMu.RUnlock()
	for _, ch := range operator {
		want[ch] = true
	}
	users := n.Registry.Users()
	regPeers := make(map[peer.ID]bool, len(users))
	for _, u := range users {
		regPeers[u.Peer] = true
		for _, ch := range u.Channels {
			want[ch] = true
		}
	}
	if n.Discovery != nil {
		// Handed-over statements live as long as a registration (or the
		// operator) serves their channel: revoke, expiry and eviction
		// end them.
		n.Discovery.Retain(func(ch channel.ID) bool { return want[ch] })
		for _, ch := range n.Discovery.Served() {
			want[ch] = true
		}
	}
	n.chargeChannels(operator, users, want)
	var add, drop []channel.ID
	for ch := range want {
		if !n.served[ch] {
			add = append(add, ch)
		}
	}
	for ch := range n.served {
		if !want[ch] {
			drop = append(drop, ch)
		}
	}
	n.served = want
	if len(add) > 0 {
		n.Sync.Want(add...)
	}
	if len(drop) > 0 {
		n.Sync.Unwant(drop...)
	}
	// A device that just registered connected before it was trusted, so
	// the catch-up at connection time skipped its channels: run it now.
	for _, u := range users {
		if !n.regPeers[u.Peer] {
			n.Sync.Resync(u.Peer, u.Channels...)
		}
	}
	n.regPeers = regPeers
}

// Served lists the channels the node serves now.
func (n *Node) Served() []channel.ID {
	n.serveMu.Lock()
	defer n.serveMu.Unlock()
	return slices.Collect(maps.Keys(n.served))
}

// keepConnected dials pi and redials it with exponential backoff whenever
// the connection drops, until ctx ends.
func (n *Node) keepConnected(ctx context.Context, pi peer.AddrInfo) {
	n.Host.Peerstore().AddAddrs(pi.ID, pi.Addrs, time.Hour*24*365)
	backoff := DefaultRedialMin
	for {
		if len(n.Host.Network().ConnsToPeer(pi.ID)) == 0 {
			// Our own schedule, not the swarm's (up to 5 minutes).
			p2p.ClearDialBackoff(n.Host, pi.ID)
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := n.Host.Connect(dctx, pi)
			cancel()
			if err != nil && ctx.Err() == nil {
				n.log.Debug("peer not reachable", "peer", pi.ID.String(), "retry_in", backoff, "err", err)
				backoff = min(backoff*2, DefaultRedialMax)
			} else {
				backoff = DefaultRedialMin
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// Addrs returns the node's full addresses, each ending in /p2p/ID, the
// form other nodes and clients take with --peer.
func (n *Node) Addrs() []string {
	ai := peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}
	mas, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		return nil
	}
	out := make([]string, len(mas))
	for i, ma := range mas {
		out[i] = ma.String()
	}
	return out
}

// Close shuts the node down in order: stop accepting (the sync protocol's
// handler goes, sessions end), let in-flight writes finish, close the
// store, close the host. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()

	var errs []error
	if n.Registry != nil {
		if err := n.Registry.Close(); err != nil {
			errs = append(errs, fmt.Errorf("routing: %w", err))
		}
	}
	if n.Sync != nil {
		if err := n.Sync.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sync: %w", err))
		}
	}
	if n.Discovery != nil {
		if err := n.Discovery.Close(); err != nil {
			errs = append(errs, fmt.Errorf("discovery: %w", err))
		}
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if err := n.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if err := n.Host.Close(); err != nil {
		errs = append(errs, fmt.Errorf("host: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node.Close: %w", err)
	}
	return nil
}
