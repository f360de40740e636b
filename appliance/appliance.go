package appliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"

	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/appliance/health"
	"github.com/redpanda-p2p/homenode/appliance/metrics"
	"github.com/redpanda-p2p/homenode/appliance/portmap"
	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/appliance/web"
	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// Options are what the daemon's main hands to Run besides the Config.
type Options struct {
	Config Config
	Logger *slog.Logger
	// Console receives the pairing QR code and URI while the node waits
	// for pairing (a terminal, or tty1 through a separate unit); nil
	// draws nothing.
	Console io.Writer
	// Version is shown on the status page.
	Version string
	// Started is called once the node is ready, with the node's peer ID
	// and addresses; cmd/homenode prints them.
	Started func(peerID string, addrs []string)
	// ButtonHold is how long the reset button must be held; default 10 s.
	ButtonHold time.Duration
	// ButtonSearch is how long after start the button is looked for;
	// default 3 minutes.
	ButtonSearch time.Duration

	// testHook, when set, is given the appliance once it is ready.
	testHook func(*Appliance)
}

// Appliance is the running daemon.
type Appliance struct {
	cfg     Config
	log     *slog.Logger
	opts    Options
	started time.Time

	node   *node.Node
	prov   *provisioning.Provisioner
	mapper *portmap.Mapper // nil when upnp = false
	reach  *p2p.Reachability
	health *health.Collector
	board  *board.Info
	clock  health.Clock

	clockOK atomic.Bool
	beat    atomic.Int64            // unix nanos of the main loop's last beat
	ready   atomic.Bool             // READY=1 sent: start-up complete (update.go)
	upd     atomic.Pointer[updater] // firmware updates; nil off the A/B image (update.go)
	bw      p2p.Bandwidth

	ledStates chan provisioning.State

	blocks *blocklist

	mu     sync.Mutex
	warned map[string]bool // warnings already written to the journal
}

// Run starts the daemon and blocks until ctx is cancelled, then stops it
// in reverse order within the configured shutdown timeout. Cancellation
// is a clean stop, not an error.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.AdminSocket == "" {
		cfg.AdminSocket = cfg.adminSocketDefault()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Appliance{cfg: cfg, log: log, opts: o, started: time.Now(),
		blocks: newBlocklist(), warned: map[string]bool{},
		ledStates: make(chan provisioning.State, 8)}
	a.clock = health.Clock{Root: cfg.BoardRoot}
	a.refreshClock()

	if info, err := board.Detect(cfg.BoardRoot); err != nil {
		log.Warn("board not recognised", "err", err)
	} else {
		a.board = info
		log.Info("board", "model", info.String())
	}

	if err := a.startNode(ctx); err != nil {
		return err
	}
	// From here on everything started is stopped by shutdown.
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopped := false
	shutdown := func() error {
		if stopped {
			return nil
		}
		stopped = true
		return a.shutdown(cancel, &wg)
	}

	if err := a.startRest(runCtx, &wg); err != nil {
		shutdown()
		return err
	}
	if a.opts.testHook != nil {
		a.opts.testHook(a)
	}
	peerID := a.node.Host.ID().String()
	if a.opts.Started != nil {
		a.opts.Started(peerID, a.node.Addrs())
	}
	if err := sdnotify.Ready(); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
	a.ready.Store(true)
	a.pushStatus(runCtx)
	log.Info("ready", "peer", peerID)

	<-ctx.Done()
	log.Info("stopping")
	sdnotify.Stopping()
	sdnotify.Status("stopping")
	return shutdown()
}

func (a *Appliance) startNode(ctx context.Context) error {
	cfg := a.cfg
	var configOwner channel.IdentityKey
	if cfg.Owner != "" {
		k, err := channel.ParseIdentityKey(cfg.Owner)
		if err != nil {
			return fmt.Errorf("config owner %q: %w", cfg.Owner, err)
		}
		configOwner = k
	}
	var nat p2pNATManager
	if cfg.UPnP {
		m, err := portmap.New(portmap.Config{
			StateFile: filepath.Join(cfg.DataDir, "portmap.json"),
			Logger:    a.log,
		})
		if err != nil {
			return fmt.Errorf("port mapping: %w", err)
		}
		a.mapper = m
		// The mapper owns the router's mappings; libp2p's own NATPortMap
		// is never enabled, so the two never fight over ports.
		nat = m.NATManager
	}
	relays, err := parseAddrInfos(cfg.Relays)
	if err != nil {
		return fmt.Errorf("config relays: %w", err)
	}
	n, err := node.New(node.Config{
		DataDir: cfg.DataDir,
		Peers:   cfg.Peers,
		P2P: p2p.Config{
			ListenAddrs:    cfg.Listen,
			Bandwidth:      &a.bw,
			NATManager:     nat,
			RelayService:   cfg.Relay,
			RelayACL:       a.relayAllowed,
			AutoNATService: cfg.Relay,
			AutoNATv2:      cfg.Relay,
			HolePunching:   cfg.Relay,
			StaticRelays:   relays,
			Limits: p2p.Limits{
				// Memory and FD are left to node/p2p, which sizes them for
				// Conns (a sync stream's yamux window per phone).
				Conns:        cfg.MaxConnections,
				ConnsPerIPv4: cfg.MaxConnectionsPerIP,
				ConnsPerIPv6: cfg.MaxConnectionsPerIP,
			},
			Logger: a.log,
		},
		Store: store.Options{
			Retention:       cfg.Retention.Duration,
			MaxChannelBytes: cfg.MaxChannelBytes,
			MaxTotalBytes:   cfg.MaxTotalBytes,
			ClockTrusted:    a.clockOK.Load,
			MigrateProgress: migrateProgress,
			ReservedBytes:   cfg.OwnerReservedBytes,
			// A migration on the trial boot of an update keeps what a
			// rollback needs (update.go).
			RollbackSnapshot: onTrialBoot(cfg.DataDir),
		},
		Blocklist:       a.blocks,
		RegistrantBytes: cfg.MaxRegistrantBytes,
		RateLimit:       node.RateLimit{PerSecond: cfg.ChannelRate, Burst: cfg.ChannelBurst},
		Routing: routing.Config{
			Owner:         configOwner,
			Capacity:      cfg.Capacity,
			AllowInfinity: cfg.AllowHopInfinity,
		},
		Sync: peersync.Config{
			Policy:       channel.Policy{MaxAge: cfg.Retention.Duration, MaxSkew: cfg.ClockSkew.Duration},
			ClockTrusted: a.clockOK.Load,
			Agent:        "redpanda-homenode/" + a.opts.Version,
		},
		Logger: a.log,
	})
	if err != nil {
		return err
	}
	a.node = n
	if a.reach, err = p2p.WatchReachability(n.Host); err != nil {
		n.Close()
		return err
	}
	if a.mapper != nil {
		a.mapper.Start(context.Background())
	}
	if err := a.blocks.load(n.Store.Meta(blockedBucket)); err != nil {
		n.Close()
		return err
	}
	// The registry must know the paired owner when it loads: pairing
	// starts only after the node, and a registry without an owner would
	// hold every friend's registration until then.
	if o, ok, err := provisioning.StoredOwner(n.Store.Meta("provisioning")); err != nil {
		a.log.Warn("cannot read the paired owner before start", "err", err)
	} else if ok {
		if err := n.SetOwner(ownerKey(o)); err != nil {
			n.Close()
			return err
		}
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	return nil
}

// startRest starts pairing, health, the status page, the admin socket and
// the daemon's own loops.
func (a *Appliance) startRest(ctx context.Context, wg *sync.WaitGroup) error {
	cfg := a.cfg
	prov, err := provisioning.New(a.node.Store.Meta("provisioning"), a.node.Host, provisioning.Config{
		Logger:  a.log,
		OnReset: a.forgetOwnerData,
		Owner:   a.configOwner(),
	})
	if err != nil {
		return fmt.Errorf("pairing: %w", err)
	}
	a.prov = prov
	(&owner.Server{IsOwner: prov.IsOwner, Status: a.Report, Follow: a.follow,
		Backups: a.node.Store.Meta("backup"), Updates: ownerUpdates{a}, Logger: a.log}).Register(a.node.Host)
	a.followKept()
	prov.OnChange(func(s provisioning.State) { a.pairingChanged(ctx, s) })
	a.pairingChanged(ctx, prov.State())

	hc, err := health.New(health.Config{
		DataDir:        cfg.DataDir,
		Board:          a.board,
		LowDiskPercent: cfg.LowDiskPercent,
		Clock:          &a.clock,
	})
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	a.health = hc

	if cfg.HTTP != "" && cfg.HTTP != "off" {
		ls, err := web.Listen(cfg.HTTP)
		if err != nil {
			return fmt.Errorf("status page %s: %w", cfg.HTTP, err)
		}
		reg, err := metrics.NewRegistry(a)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		h := web.NewHandler(web.Options{
			Source:   a,
			Gatherer: reg,
			Health:   a.healthy,
			Logger:   a.log,
			Hosts:    web.HostNames(cfg.HTTPHosts...),
		})
		for _, l := range ls {
			a.log.Info("status page", "url", "http://"+l.Addr().String()+"/")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := web.Serve(ctx, ls, h, 5*time.Second, a.log); err != nil {
				a.log.Error("status page stopped", "err", err)
			}
		}()
	}

	if err := os.MkdirAll(filepath.Dir(cfg.AdminSocket), 0o750); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	al, err := admin.Listen(cfg.AdminSocket, cfg.AdminGroup)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", cfg.AdminSocket, err)
	}
	srv := &admin.Server{Backend: a, Logger: a.log}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, al); err != nil {
			a.log.Error("admin socket stopped", "err", err)
		}
	}()

	a.startUpdater(ctx, wg)
	a.beat.Store(time.Now().UnixNano())
	ledLoop := func(ctx context.Context) { a.ledLoop(ctx, a.ledStates) }
	for _, loop := range []func(context.Context){a.mainLoop, a.statusLoop, a.clockLoop, ledLoop, a.buttonLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sdnotify.RunWatchdog(ctx, a.healthy, a.log); err != nil {
			a.log.Warn("watchdog", "err", err)
		}
	}()
	return nil
}

// shutdown stops in reverse: the daemon's loops, page and socket, then
// pairing, then the node (stop accepting, finish in-flight writes, close
// the store, close the host), all within the shutdown timeout.
func (a *Appliance) shutdown(cancel context.CancelFunc, wg *sync.WaitGroup) error {
	done := make(chan error, 1)
	go func() {
		cancel()
		wg.Wait()
		if a.mapper != nil {
			if err := a.mapper.Close(); err != nil {
				a.log.Warn("removing port mappings", "err", err)
			}
		}
		if a.prov != nil {
			a.prov.Close()
		}
		if a.reach != nil {
			a.reach.Close()
		}
		done <- a.node.Close()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("appliance shutdown: %w", err)
		}
		a.log.Info("stopped cleanly")
		return nil
	case <-time.After(a.cfg.ShutdownTimeout.Duration):
		return fmt.Errorf("appliance shutdown: not finished after %s", a.cfg.ShutdownTimeout.Duration)
	}
}

// migrateGrace is how much more start-up time each migration progress
// report asks systemd for: reports come at least every second while
// batches commit, so a stalled migration still times out.
const migrateGrace = time.Minute

// migrateProgress keeps systemd's start timeout (TimeoutStartSec) from
// killing the conversion of an older message store, which takes minutes
// on a Pi with a full one, while it makes progress, and shows how far it
// got in `systemctl status`. Outside systemd both are no-ops.
func migrateProgress(moved int) {
	_ = sdnotify.ExtendTimeout(migrateGrace)
	_ = sdnotify.Status(fmt.Sprintf("converting the message store to the new format: %d messages so far", moved))
}

// relayAllowed is the relay service's ACL: registered users only.
func (a *Appliance) relayAllowed(p peer.ID) bool {
	return a.node != nil && a.node.Registry != nil && a.node.Registry.Registered(p)
}

func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// p2pNATManager is what p2p.Config.NATManager takes.
type p2pNATManager = func(network.Network) basichost.NATManager
