package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Files inside the home directory.
const (
	StoreFile = "client.db" // envelopes, history, channels, nodes, identity
	LockFile  = "lock"      // who holds the home: "pid N: command"
)

// Meta buckets of the store file.
const (
	bucketSelf     = "client"   // identity seed, ticket chains
	bucketChannels = "channels" // name -> channel record
	bucketNodes    = "nodes"    // peer ID -> node record
	bucketSeen     = "seen"     // message ID -> timestamp: processed once
	bucketReceipts = "receipts" // message ID -> reader identities (32 bytes each)
	historyPrefix  = "history/" // + channel ID hex: ts|id -> history record
)

var keyIdentity = []byte("identity")

// Defaults for Config fields left zero.
const (
	DefaultLockTimeout = time.Second
	DefaultPushTimeout = 10 * time.Second
	DefaultMaxNodes    = 5
)

// Config says where a client lives and how it behaves. Zero fields take
// the defaults written beside them.
type Config struct {
	// Home is the client's directory. Required.
	Home string
	// Create makes a new identity in Home if there is none; without it,
	// Open of an empty home fails with ErrNotInitialised.
	Create bool
	// Listen are multiaddrs the client's host listens on. Default: one
	// loopback TCP port (a phone dials out; it does not need to be
	// reachable).
	Listen []string
	// DialOnly makes a host that listens on nothing, not even loopback,
	// and never lists the device's network interfaces (Android 11+
	// forbids that): a phone only dials its nodes (phone.go). Listen
	// must then be empty.
	DialOnly bool
	// NoReceipts stops the client from posting delivery receipts.
	NoReceipts bool
	// MaxNodes is how many super nodes the client keeps (3..5 in
	// practice). Default 5.
	MaxNodes int
	// Owner names the process in the lock file, for the error another
	// process gets; default the command line.
	Owner string
	// FlushTimeout bounds how long Close waits for what this process
	// queued in the outbox to reach a super node (DefaultFlushTimeout);
	// negative: Close does not wait (the outbox keeps it for next time).
	FlushTimeout time.Duration
	// ProbeInterval is how often each node connection is pinged to find
	// one a killed node left behind (probe.go): it bounds how long a
	// running app stays deaf after its node comes back. Default
	// DefaultProbeInterval; negative: no probes (an app that is in the
	// background and would rather save battery; QUIC's idle timeout
	// ends a dead connection after 30 s).
	ProbeInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards below warnings on stderr.
	Logger *slog.Logger
}

// Client is an open light client. Its methods are safe for concurrent use.
type Client struct {
	cfg  Config
	log  *slog.Logger
	self *channel.Identity
	db   *store.DB
	h    host.Host
	svc  *peersync.Service
	out  *outbox
	dev  *devState

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	chans    map[channel.ID]*chanState
	lastTs   int64
	rtt      map[string]time.Duration
	lastDial sync.Map             // peer.ID -> *UnreachableError: why the last dial failed
	regConns map[peer.ID][]string // per node, the connections its last registration attempt saw
	regMu    sync.Mutex           // one registration round at a time
	listen   map[*listener]struct{}
	dialing  bool
	procMu   sync.Mutex // one message processed at a time, so seen-checks hold
	unsubscr func()
	hints    hintState // node hints and introductions (hints.go)

	probes probeState // dead-connection probes (probe.go)

	// Close stops processing (procQuit; procDone once the batch under
	// way is done and its receipts are queued) before it flushes.
	procQuit, procDone chan struct{}
	procOnce           sync.Once
}

type chanState struct {
	name string
	key  *channel.Key
}

// Open opens the client in cfg.Home. Only one process may have a home
// open; another gets ErrLocked naming the holder.
func Open(cfg Config) (*Client, error) {
	if cfg.Home == "" {
		return nil, errors.New("client.Open: no home directory")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = DefaultMaxNodes
	}
	if cfg.FlushTimeout == 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.DialOnly && len(cfg.Listen) > 0 {
		return nil, fmt.Errorf("client.Open: DialOnly with Listen %v: a dial-only client listens on nothing", cfg.Listen)
	}
	if len(cfg.Listen) == 0 && !cfg.DialOnly {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.Owner == "" {
		cfg.Owner = strings.Join(os.Args, " ")
	}
	path := filepath.Join(cfg.Home, StoreFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if !cfg.Create {
			return nil, fmt.Errorf("client.Open: %w: %s has no %s (run `redpanda init --home %s` first)", ErrNotInitialised, cfg.Home, StoreFile, cfg.Home)
		}
		if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
			return nil, fmt.Errorf("client.Open: %w", err)
		}
	}
	db, err := store.Open(path, store.Options{Now: cfg.Now, Logger: cfg.Logger, LockTimeout: DefaultLockTimeout})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("client.Open: %w: %s", ErrLocked, lockHolder(cfg.Home))
		}
		return nil, fmt.Errorf("client.Open: %w", err)
	}
	c := &Client{cfg: cfg, db: db, log: cfg.Logger.With("component", "client"),
		chans: map[channel.ID]*chanState{}, rtt: map[string]time.Duration{}, listen: map[*listener]struct{}{}, out: newOutbox(), dev: newDevState(),
		regConns: map[peer.ID][]string{}}
	if err := c.start(); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// lockHolder says who holds the home, from the lock file it wrote.
func lockHolder(home string) string {
	b, err := os.ReadFile(filepath.Join(home, LockFile))
	if err != nil || len(b) == 0 {
		return "another redpanda process has " + home + " open; stop it or use another --home"
	}
	return strings.TrimSpace(string(b)) + " has " + home + " open; stop it or use another --home"
}

func (c *Client) start() error {
	if err := c.loadIdentity(); err != nil {
		return err
	}
	_ = os.WriteFile(filepath.Join(c.cfg.Home, LockFile),
		[]byte("pid "+strconv.Itoa(os.Getpid())+" ("+c.cfg.Owner+")\n"), 0o600)
	if err := c.loadChannels(); err != nil {
		return err
	}
	h, err := p2p.New(c.hostConfig())
	if err != nil {
		return fmt.Errorf("client.Open: %w", err)
	}
	c.h = h
	// Light: the client serves nobody, so a node tells it only about its
	// own channels (Hello.light).
	c.svc = peersync.New(h, c.db, peersync.Config{Now: c.cfg.Now, Agent: "redpanda-client", Logger: c.cfg.Logger, Light: true})
	routing.HandleNotices(h, c.onNotice)
	c.mu.Lock()
	for id := range c.chans {
		c.svc.Want(id)
	}
	c.mu.Unlock()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	sub, unsub := c.svc.Subscribe(4096)
	c.unsubscr = unsub
	c.catchUp()
	c.procQuit, c.procDone = make(chan struct{}), make(chan struct{})
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		defer close(c.procDone)
		c.processLoop(sub)
	}()
	go c.runOutbox()
	return nil
}

func (c *Client) loadIdentity() error {
	m := c.db.Meta(bucketSelf)
	seed, err := m.Get(keyIdentity)
	if errors.Is(err, store.ErrNotFound) {
		if !c.cfg.Create {
			return fmt.Errorf("client.Open: %w: %s holds no identity (run `redpanda init --home %s`)", ErrNotInitialised, c.cfg.Home, c.cfg.Home)
		}
		id, err := channel.NewIdentity(rand.Reader)
		if err != nil {
			return err
		}
		if err := m.Put(keyIdentity, id.Seed()); err != nil {
			return fmt.Errorf("client.Open: save identity: %w", err)
		}
		c.self = id
		return nil
	}
	if err != nil {
		return fmt.Errorf("client.Open: identity: %w", err)
	}
	c.self, err = channel.IdentityFromSeed(seed)
	if err != nil {
		return fmt.Errorf("client.Open: identity record: %w", err)
	}
	return nil
}

// ID returns the client's author identity ("rpi…"): what friends issue
// tickets to and what a node's owner is configured with.
func (c *Client) ID() string { return c.self.Public().String() }

// PeerID returns the client host's libp2p peer ID.
func (c *Client) PeerID() string { return c.h.ID().String() }

// Close stops the client: it waits (at most Config.FlushTimeout) for
// what this process queued in the outbox to reach a super node, then
// background work ends, the sync service, the host and the store close,
// and the home is free for another process.
func (c *Client) Close() error {
	if !c.isClosed() {
		// What arrives from now on is stored and processed next time
		// (catch-up); what was processed has its receipts queued.
		c.procOnce.Do(func() { close(c.procQuit) })
		<-c.procDone
		c.flushBeforeClose()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ls := make([]*listener, 0, len(c.listen))
	for l := range c.listen {
		ls = append(ls, l)
	}
	c.mu.Unlock()
	c.cancel()
	var errs []error
	if err := c.svc.Close(); err != nil {
		errs = append(errs, err)
	}
	c.wg.Wait()
	for _, l := range ls {
		l.stop()
	}
	if err := c.h.Close(); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(filepath.Join(c.cfg.Home, LockFile))
	if err := c.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client.Close: %w", err)
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// now returns a timestamp (ms) strictly after the last one this client
// wrote, so that its own messages sort in the order they were sent.
func (c *Client) nextTimestamp() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.cfg.Now().UnixMilli()
	if ts <= c.lastTs {
		ts = c.lastTs + 1
	}
	c.lastTs = ts
	return time.UnixMilli(ts)
}

var _ io.Closer = (*Client)(nil)
