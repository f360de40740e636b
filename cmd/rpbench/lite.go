package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/redpanda-p2p/homenode/internal/loopback"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// lite is the light client rpbench runs by the thousand: a libp2p host
// that does not listen (TCP and Noise only, no resource manager, no relay)
// and dials from a loopback address of its own (clientTransport), a sync
// service and a store, registered with one node. It speaks exactly
// what client speaks on the wire (routing.Register, sync), without the
// SDK's node choice, adverts and renewals, which an idle benchmark client
// does not need and whose timers would cost this process CPU the node
// being measured shares.
type lite struct {
	id  *channel.Identity
	h   host.Host
	db  *store.DB
	own bool // db is this client's own, closed with it
	svc *peersync.Service
	sub <-chan peersync.Stored
}

// newLite builds a client. With db nil it opens its own store in dir;
// otherwise it shares db (idle and write-only clients store nothing that
// matters, and one file each would cost the load generator 2 fds apiece).
func newLite(dir string, db *store.DB, log *slog.Logger) (*lite, error) {
	h, err := libp2p.New(
		libp2p.NoListenAddrs,
		clientTransport(),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("client host: %w", err)
	}
	own := db == nil
	if own {
		db, err = store.Open(filepath.Join(dir, "client.db"), store.Options{Logger: log})
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	id, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		h.Close()
		return nil, err
	}
	c := &lite{id: id, h: h, db: db, own: own}
	c.svc = peersync.New(h, db, peersync.Config{Logger: log, Agent: "rpbench", Light: true})
	// Its reader drains it at once; a deep buffer of pointers cost the
	// relay run ~90 MB of heap over 100 clients, which every GC scanned.
	c.sub, _ = c.svc.Subscribe(1 << 10)
	return c, nil
}

// sources counts the clients this process has made, for clientTransport.
var sources atomic.Int64

// clientTransport is TCP dialling from the next client's own source
// address, loopback.Spread(n) for the n-th client of the process: each
// client an address of its own, consecutive clients in different /24s.
// The node limits registrations per source address (node/routing's
// admission: 20 at once, 60 a minute) and strangers' sync sessions per
// /24 (node/peersync: 16); on the internet one address is one home, and
// a benchmark that stands for thousands of phones in many homes must
// come from many, not from 127.0.0.1, without loosening the node's
// limits for it.
func clientTransport() libp2p.Option {
	src := loopback.Spread(int(sources.Add(1) - 1))
	return libp2p.Transport(tcp.NewTCPTransport, loopback.DialFrom(src))
}

// join connects to n, registers at hop infinity for chs and waits for the
// sync session (so that the node knows what the client wants).
func (c *lite) join(ctx context.Context, n peer.AddrInfo, chs ...channel.ID) (routing.Result, error) {
	c.svc.Want(chs...)
	if err := c.h.Connect(ctx, n); err != nil {
		return routing.Result{}, fmt.Errorf("connect: %w", err)
	}
	res, err := routing.Register(ctx, c.h, n.ID, c.id, nil, chs)
	if err != nil {
		return res, err
	}
	return res, c.session(ctx, n)
}

// session connects to n and waits for the sync session the client (a
// light one) opens on connect: pushing before it would open a second
// stream that replaces the first under the push.
func (c *lite) session(ctx context.Context, n peer.AddrInfo) error {
	if err := c.h.Connect(ctx, n); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	for c.svc.Stats(n.ID).FramesIn["hello"] == 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("no sync session: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (c *lite) close() {
	c.svc.Close()
	c.h.Close()
	if c.own {
		c.db.Close()
	}
}

// clientTempDir makes a directory for the clients' own stores, in memory
// (/dev/shm) where there is one: on a phone each client fsyncs to its own
// flash, and 2x pairs clients fsyncing to this machine's one disk would
// measure the load generator, not the nodes, whose stores stay on disk.
func clientTempDir(pattern string) (string, error) {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", pattern); err == nil {
			return d, nil
		}
	}
	return os.MkdirTemp("", pattern)
}

// quietLogger drops everything below errors: a benchmark's output is its
// figures.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// streamReserve is what the resource manager accounts per idle client:
// the sync stream's yamux window and some room for registration and
// identify streams.
const streamReserve = 320 << 10

// nodeOpts sizes a node for a scenario.
type nodeOpts struct {
	capacity int      // registrations and connections
	peers    []string // configured peers
	dht      bool
	disc     func(*node.Config)
}

// startNode starts a node on loopback in dir, accepting hop-infinity
// clients, with connection limits raised to the capacity asked for and
// loopback exempt from the per-IP limits (p2p.Limits.LimitLoopback false).
func startNode(ctx context.Context, dir string, o nodeOpts, log *slog.Logger) (*node.Node, error) {
	capacity := max(o.capacity, 64)
	cfg := node.Config{
		DataDir: dir,
		Peers:   o.peers,
		NoDHT:   !o.dht,
		P2P: p2p.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Limits: p2p.Limits{Conns: capacity + 512, ConnsInbound: capacity + 512, FD: 2*capacity + 1024,
				// yamux reserves its initial window (256 KiB) from the
				// resource manager for every stream, and an idle
				// registered client holds one (sync): the 512 MiB default
				// stops near 1,950 clients while their real RSS is far less.
				Memory: max(512<<20, int64(capacity)*streamReserve)},
			ConnMgr: p2p.ConnMgr{LowWater: capacity + 256, HighWater: capacity + 512},
		},
		Routing: routing.Config{AllowInfinity: true, Capacity: capacity},
		Logger:  log,
	}
	if o.disc != nil {
		o.disc(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func addrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// writer seals messages into one channel.
type writer struct {
	key    *channel.Key
	author *channel.Identity
}

func newWriter() (*writer, error) {
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	a, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &writer{key: k, author: a}, nil
}

func (w *writer) seal(body int, at time.Time) (*channel.Envelope, error) {
	return w.key.Seal(w.author, channel.KindText, make([]byte, body), at, rand.Reader)
}
