package appliance

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"

	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/appliance/health"
	"github.com/redpanda-p2p/homenode/appliance/metrics"
	"github.com/redpanda-p2p/homenode/appliance/owner"
	"github.com/redpanda-p2p/homenode/appliance/portmap"
	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/appliance/status"
	"github.com/redpanda-p2p/homenode/appliance/web"
	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/sync"
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

	// testHook, when set, is given the appliance once it is ready.
	testHook func(*Appliance)
}

// TestWedgeEnv names a file that, while it exists, makes the main loop
// stop beating so the watchdog check fails: a hook for the test that
// proves WATCHDOG=1 stops when the node is wedged. Only tests set it.
const TestWedgeEnv = "REDPANDA_TEST_WEDGE_FILE"

// Intervals of the daemon's own loops.
const (
	beatInterval   = time.Second
	beatStale      = 5 * beatInterval
	statusInterval = 10 * time.Second
	clockInterval  = 5 * time.Second
)

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

	mu      gosync.Mutex
	blocked map[channel.ID]bool
	warned  map[string]bool // warnings already written to the journal
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
		blocked: map[channel.ID]bool{}, warned: map[string]bool{},
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
	var wg gosync.WaitGroup
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
	if a.opts.Started != nil {
		a.opts.Started(a.node.Host.ID().String(), a.node.Addrs())
	}
	if err := sdnotify.Ready(); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
	a.ready.Store(true)
	a.pushStatus(runCtx)
	log.Info("ready", "peer", a.node.Host.ID().String())

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
		RegistrantBytes: cfg.MaxRegistrantBytes,
		RateLimit:       node.RateLimit{PerSecond: cfg.ChannelRate, Burst: cfg.ChannelBurst},
		Routing: routing.Config{
			Owner:         configOwner,
			Capacity:      cfg.Capacity,
			AllowInfinity: cfg.AllowHopInfinity,
		},
		Sync: sync.Config{
			Policy:       channel.Policy{MaxAge: cfg.Retention.Duration, MaxSkew: cfg.ClockSkew.Duration},
			ClockTrusted: a.clockOK.Load,
			Accept:       a.accept,
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
	if err := a.loadBlocked(); err != nil {
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
func (a *Appliance) startRest(ctx context.Context, wg *gosync.WaitGroup) error {
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
	if key, err := a.node.Store.Meta(followBucket).Get(followKey); err == nil {
		if err := a.node.FollowOwner(string(key)); err != nil {
			a.log.Warn("following the owner's node channel", "err", err)
		}
	}
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
func (a *Appliance) shutdown(cancel context.CancelFunc, wg *gosync.WaitGroup) error {
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

// every runs f each interval until ctx ends.
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

func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// mainLoop is the daemon's heartbeat: the watchdog pings only while it
// beats, so a wedged process is restarted by systemd.
func (a *Appliance) mainLoop(ctx context.Context) {
	wedge := os.Getenv(TestWedgeEnv)
	every(ctx, beatInterval, func() {
		if wedge != "" {
			if _, err := os.Stat(wedge); err == nil {
				return // wedged on purpose: no beat
			}
		}
		a.beat.Store(time.Now().UnixNano())
	})
}

// healthy is the watchdog's and /healthz's check: the main loop beats and
// the store answers.
func (a *Appliance) healthy(ctx context.Context) error {
	if age := time.Since(time.Unix(0, a.beat.Load())); age > beatStale {
		return fmt.Errorf("main loop has not run for %s", age.Round(time.Second))
	}
	if _, err := a.node.Store.Stats(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return ctx.Err()
}

func (a *Appliance) statusLoop(ctx context.Context) {
	every(ctx, statusInterval, func() { a.pushStatus(ctx) })
}

// pushStatus sends systemd the one-line status.
func (a *Appliance) pushStatus(ctx context.Context) {
	r, err := a.Report(ctx)
	if err != nil {
		a.log.Warn("status report", "err", err)
		return
	}
	sdnotify.Status(status.StatusLine(r))
	a.logWarnings(r.Warnings)
}

// logWarnings writes each warning to the journal once when it appears and
// once when it clears.
func (a *Appliance) logWarnings(ws []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := map[string]bool{}
	for _, w := range ws {
		now[w] = true
		if !a.warned[w] {
			a.log.Warn(w)
		}
	}
	for w := range a.warned {
		if !now[w] {
			a.log.Info("cleared: " + w)
		}
	}
	a.warned = now
}

func (a *Appliance) refreshClock() bool {
	ok := a.clock.Synced()
	return a.clockOK.Swap(ok) != ok
}

// clockLoop re-checks whether the clock is synchronised and says so when
// it changes: until it is, messages are not rejected or expired by time.
func (a *Appliance) clockLoop(ctx context.Context) {
	a.logClock()
	every(ctx, clockInterval, func() {
		if a.refreshClock() {
			a.logClock()
		}
	})
}

func (a *Appliance) logClock() {
	if a.clockOK.Load() {
		a.log.Info("clock synchronised: message timestamps are checked")
	} else {
		a.log.Warn("clock not synchronised: message timestamps are not trusted, nothing is rejected or expired by time until it is")
	}
}

// pairingChanged shows or hides the pairing QR code and sets the LED.
func (a *Appliance) pairingChanged(ctx context.Context, s provisioning.State) {
	select {
	case a.ledStates <- s:
	default:
	}
	switch s {
	case provisioning.StateWaiting:
		uri, err := a.prov.URI()
		if err != nil {
			a.log.Error("pairing URI", "err", err)
			return
		}
		a.log.Info("waiting for pairing: scan the QR code with the redPanda app", "uri", uri)
		if a.opts.Console != nil {
			qr, err := provisioning.QRTerminal(uri)
			if err == nil {
				fmt.Fprintf(a.opts.Console, "\nScan to pair this home node with your phone:\n\n%s\n%s\n\n", qr, uri)
			}
		}
	case provisioning.StateOwned:
		if o, ok := a.prov.Owner(); ok {
			if err := a.node.Registry.SetOwner(ownerKey(o)); err != nil {
				a.log.Error("setting the owner", "err", err)
			}
			a.log.Info("paired", "owner", ownerString(o))
			if a.opts.Console != nil {
				fmt.Fprintf(a.opts.Console, "Paired with %s. This node is now yours.\n", ownerString(o))
			}
		}
	}
	a.pushStatus(ctx)
}

func ownerKey(o provisioning.Owner) channel.IdentityKey {
	var k channel.IdentityKey
	copy(k[:], o.Key)
	return k
}

func ownerString(o provisioning.Owner) string { return ownerKey(o).String() }

// forgetOwnerData is the factory reset's hook: stored messages, sync
// state and blocks go; the identity stays unless the reset renews it.
func (a *Appliance) forgetOwnerData(ctx context.Context) error {
	a.mu.Lock()
	a.blocked = map[channel.ID]bool{}
	a.mu.Unlock()
	if err := a.node.Registry.Reset(); err != nil {
		return err
	}
	a.node.ForgetOwner()
	return a.node.Store.Wipe("provisioning")
}

// accept is the sync layer's policy: blocked channels are neither stored,
// announced nor served.
func (a *Appliance) accept(_ peer.ID, ch channel.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.blocked[ch]
}

func (a *Appliance) loadBlocked() error {
	return a.node.Store.Meta("blocked").ForEach(func(k, _ []byte) error {
		var id channel.ID
		if len(k) == len(id) {
			copy(id[:], k)
			a.blocked[id] = true
		}
		return nil
	})
}

// Report implements status.Source.
func (a *Appliance) Report(ctx context.Context) (status.Report, error) {
	n := a.node
	r := status.Report{
		GeneratedAt:  time.Now(),
		Node:         status.Node{PeerID: n.Host.ID().String(), Addresses: n.Addrs()},
		Version:      a.opts.Version,
		Uptime:       time.Since(a.started),
		Clock:        status.Clock{Synchronized: a.clockOK.Load()},
		Reachability: a.reachability(),
	}
	if a.board != nil {
		r.Board = a.board.String()
	}
	r.Pairing = a.pairingReport()
	peers, _ := a.Peers(ctx)
	r.Peers = status.Peers{Count: len(peers), List: peers}
	for _, u := range a.node.Registry.Users() {
		if u.Hop == routing.HopInfinity {
			r.Users.Infinity++
		} else if u.Hop >= 0 && u.Hop <= status.MaxHop {
			r.Users.ByHop[u.Hop]++
		}
	}
	chans, err := a.Channels(ctx)
	if err != nil {
		return r, err
	}
	r.Channels = chans
	st, err := n.Store.Stats()
	if err != nil {
		return r, fmt.Errorf("store: %w", err)
	}
	r.Messages = splitMessages(chans, int64(st.Messages), st.Bytes)
	r.Counters = a.counters()
	r.Update = a.updateReport()
	if a.health != nil {
		snap, err := a.health.Snapshot(ctx)
		if err != nil {
			a.log.Debug("health snapshot", "err", err)
		}
		r.Disk = status.Disk{Path: a.cfg.DataDir, FreeBytes: snap.Disk.FreeBytes, TotalBytes: snap.Disk.TotalBytes}
		r.Memory = status.Memory{RSSBytes: snap.Process.RSSBytes}
		if snap.Board.TempKnown {
			c := snap.Board.Celsius
			r.CPUTempCelsius = &c
		}
		if snap.Board.ThrottleKnown {
			t := snap.Board.Throttle
			r.Throttling = status.Throttling{
				Known:                true,
				UnderVoltage:         t.Has(board.UnderVoltage),
				FrequencyCapped:      t.Has(board.FrequencyCapped),
				Throttled:            t.Has(board.Throttled),
				SoftTempLimit:        t.Has(board.SoftTempLimit),
				UnderVoltageOccurred: t.Has(board.UnderVoltageBoot),
				ThrottledOccurred:    t.Has(board.ThrottledBoot),
			}
		}
		r.Clock.Source = snap.Clock.Source
		for _, w := range snap.Warnings {
			r.Warnings = append(r.Warnings, w.Message)
		}
	}
	r.Warnings = append(r.Warnings, a.storageWarnings()...)
	return r, nil
}

// The owner's node channel key, kept so the node follows it after a
// restart; the factory reset wipes it with the rest.
var (
	followBucket = "owner-channel"
	followKey    = []byte("key")
)

// follow is the owner protocol's "follow": serve what the owner's
// devices list in their node channel, from now on and after restarts.
func (a *Appliance) follow(key string) error {
	if err := a.node.FollowOwner(key); err != nil {
		return err
	}
	if err := a.node.Store.Meta(followBucket).Put(followKey, []byte(key)); err != nil {
		return fmt.Errorf("keeping the owner channel key: %w", err)
	}
	a.log.Info("following the owner's node channel")
	return nil
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

// reachability combines the port mapper's diagnosis with AutoNAT's
// verdict and the relay state into the report's words.
func (a *Appliance) reachability() status.Reachability {
	r := a.upnpReachability()
	if a.reach == nil {
		return r
	}
	st := a.reach.Status()
	switch {
	case st.RelayServing:
		r.Relay = "serving registered users"
	case len(st.Relays) > 0:
		r.Relay = fmt.Sprintf("reachable through %d relay(s), first %s", len(st.Relays), st.Relays[0].ShortString())
	case a.cfg.Relay && st.State() == "private":
		r.Relay = "searching for a relay"
	case a.cfg.Relay:
		r.Relay = "not needed"
	default:
		r.Relay = "off"
	}
	if st.State() == "public" {
		r.Reachable = true
		if !strings.HasPrefix(r.Diagnosis, "reachable") {
			r.Diagnosis = "reachable (confirmed by other nodes)"
			r.Hint = ""
		}
	} else if len(st.Relays) > 0 && !r.Reachable {
		r.Reachable = true
		r.Diagnosis += "; reachable through a relay"
	}
	return r
}

// upnpReachability turns the port mapper's diagnosis into words.
func (a *Appliance) upnpReachability() status.Reachability {
	if a.mapper == nil {
		return status.Reachability{
			Diagnosis: "UPnP off",
			Hint:      "Port mapping is turned off (upnp = false); forward the node's ports on the router by hand, or friends reach it only through a relay.",
		}
	}
	d := a.mapper.Diagnosis()
	r := status.Reachability{Reachable: d.Status == portmap.StatusMapped, Hint: d.Hint}
	switch d.Status {
	case portmap.StatusMapped:
		r.Diagnosis = "reachable via UPnP"
		r.Hint = ""
	case portmap.StatusStarting:
		r.Diagnosis = "looking for the router"
	case portmap.StatusNoGateway:
		r.Diagnosis = "no UPnP router"
	case portmap.StatusRefused:
		r.Diagnosis = fmt.Sprintf("router refused port mapping (UPnP error %d %s)", d.UPnPCode, d.UPnPText)
	case portmap.StatusNoWANAddress:
		r.Diagnosis = "router has no usable internet address"
	case portmap.StatusCGNAT:
		r.Diagnosis = "behind carrier-grade or double NAT"
	default:
		r.Diagnosis = d.Status.String()
	}
	if d.ExternalIP.IsValid() {
		for _, l := range d.Leases {
			if l.Protocol == "TCP" {
				r.ExternalAddr = net.JoinHostPort(d.ExternalIP.String(), fmt.Sprint(l.ExternalPort))
				break
			}
		}
		if r.ExternalAddr == "" {
			r.ExternalAddr = d.ExternalIP.String()
		}
	}
	return r
}

func (a *Appliance) pairingReport() status.Pairing {
	switch a.prov.State() {
	case provisioning.StateWaiting:
		uri, _ := a.prov.URI()
		return status.Pairing{State: status.PairingWaiting, URI: uri}
	case provisioning.StateOwned:
		o, _ := a.prov.Owner()
		return status.Pairing{State: status.PairingOwned, Owner: ownerString(o)}
	}
	return status.Pairing{State: status.PairingNew}
}

// Status implements admin.Backend.
func (a *Appliance) Status(ctx context.Context) (status.Report, error) { return a.Report(ctx) }

// Peers implements admin.Backend: every connected peer.
func (a *Appliance) Peers(ctx context.Context) ([]status.Peer, error) {
	h := a.node.Host
	var out []status.Peer
	for _, c := range h.Network().Conns() {
		dir := status.Outbound
		if c.Stat().Direction == network.DirInbound {
			dir = status.Inbound
		}
		out = append(out, status.Peer{
			ID:        c.RemotePeer().String(),
			Addr:      c.RemoteMultiaddr().String(),
			Direction: dir,
			Latency:   h.Peerstore().LatencyEWMA(c.RemotePeer()),
		})
	}
	return out, nil
}

// Users implements admin.Backend: the registered users, lowest hop first.
func (a *Appliance) Users(ctx context.Context) ([]status.User, error) {
	return statusUsers(a.node.Registry.Users()), nil
}

func statusUsers(us []routing.Registration) []status.User {
	var out []status.User
	for _, u := range us {
		su := status.User{Identity: u.Identity.String(), Hop: status.Hop(u.Hop), Registered: u.Since}
		if u.SponsoredBy != (channel.IdentityKey{}) {
			su.Sponsor = u.SponsoredBy.String()
		}
		for _, k := range u.Path {
			su.Chain = append(su.Chain, k.String())
		}
		out = append(out, su)
	}
	return out
}

// Branch implements admin.BranchBackend: the registered users who asked
// for the channel, with the trust chains that admitted them.
func (a *Appliance) Branch(ctx context.Context, ch string) ([]status.User, error) {
	id, err := parseChannelArg(ch)
	if err != nil {
		return nil, err
	}
	return statusUsers(a.node.Registry.Branch(id)), nil
}

// Prune implements admin.BranchBackend: routing.Registry.PruneBranch,
// then what the revoked users brought in and nobody else wants goes.
func (a *Appliance) Prune(ctx context.Context, ch string) ([]string, error) {
	id, err := parseChannelArg(ch)
	if err != nil {
		return nil, err
	}
	chs := a.channelsOf()
	gone, err := a.node.Registry.PruneBranch(id)
	a.dropRevoked(chs, gone)
	if errors.Is(err, routing.ErrNoBranch) {
		return nil, fmt.Errorf("%w: no registered user (other than the owner) asked for channel %s", admin.ErrNotFound, id)
	}
	var out []string
	for _, k := range gone {
		out = append(out, k.String())
	}
	if err != nil {
		return out, err
	}
	a.log.Warn("branch pruned by the owner", "channel", id.String(), "revoked", len(out))
	return out, nil
}

// Channels implements admin.Backend: the channels with stored messages,
// and blocked ones.
func (a *Appliance) Channels(ctx context.Context) ([]status.Channel, error) {
	cs, err := a.node.Store.Channels()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	control := a.node.ControlChannels()
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[channel.ID]bool{}
	out := make([]status.Channel, 0, len(cs))
	for _, c := range cs {
		seen[c.Channel] = true
		sc := status.Channel{ID: c.Channel.String(), Messages: int64(c.Messages), Bytes: c.Bytes, Blocked: a.blocked[c.Channel],
			Control: control[c.Channel]}
		if c.Newest > 0 {
			sc.Newest = time.UnixMilli(c.Newest)
		}
		out = append(out, sc)
	}
	for id := range a.blocked {
		if !seen[id] {
			out = append(out, status.Channel{ID: id.String(), Blocked: true})
		}
	}
	return out, nil
}

// Revoke implements admin.Backend.
func (a *Appliance) Revoke(ctx context.Context, identity string) ([]string, error) {
	id, err := channel.ParseIdentityKey(identity)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", admin.ErrMalformedRequest, err)
	}
	chs := a.channelsOf()
	removed, err := a.node.Registry.Revoke(id)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(removed))
	for i, k := range removed {
		out[i] = k.String()
	}
	a.log.Warn("revoked by the owner", "identity", identity, "removed", len(out))
	a.dropRevoked(chs, removed)
	return out, nil
}

// Block implements admin.Backend: the channel is no longer stored,
// relayed or served, starting now, and what it stored is deleted.
func (a *Appliance) Block(ctx context.Context, ch string) error {
	id, err := parseChannelArg(ch)
	if err != nil {
		return err
	}
	if err := a.node.Store.Meta("blocked").Put(id[:], []byte{1}); err != nil {
		return err
	}
	a.mu.Lock()
	a.blocked[id] = true
	a.mu.Unlock()
	// Blocking frees what the channel stored (docs/SECURITY.md).
	removed, freed, err := a.node.Store.DeleteChannel(id)
	a.log.Warn("channel blocked by the owner", "channel", id.String(), "messages_deleted", removed, "bytes_freed", freed)
	if err != nil {
		return fmt.Errorf("blocked, but deleting its stored messages failed: %w", err)
	}
	return nil
}

// Unblock implements admin.Backend.
func (a *Appliance) Unblock(ctx context.Context, ch string) error {
	id, err := parseChannelArg(ch)
	if err != nil {
		return err
	}
	a.mu.Lock()
	was := a.blocked[id]
	a.mu.Unlock()
	if !was {
		return fmt.Errorf("%w: channel %s is not blocked", admin.ErrNotFound, id)
	}
	if err := a.node.Store.Meta("blocked").Delete(id[:]); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.blocked, id)
	a.mu.Unlock()
	a.log.Info("channel unblocked by the owner", "channel", id.String())
	return nil
}

// Reset implements admin.Backend: the factory reset of a running node.
// The identity stays; renewing it needs the node stopped (homenode reset
// --new-identity).
func (a *Appliance) Reset(ctx context.Context) error {
	if err := a.prov.Reset(ctx, false); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	if a.cfg.Owner != "" {
		a.log.Warn("factory reset done: registrations and stored messages forgotten; owned by the configured owner again")
		return nil
	}
	a.log.Warn("factory reset done: owner, registrations and stored messages forgotten; waiting for pairing")
	return nil
}

func parseChannelArg(s string) (channel.ID, error) {
	s = strings.TrimSpace(s)
	if id, err := channel.ParseID(s); err == nil {
		return id, nil
	}
	if k, err := channel.ParseKey(s); err == nil {
		return k.ID(), nil
	}
	return channel.ID{}, fmt.Errorf("%w: %q is neither a channel ID (64 hex digits) nor a key string", admin.ErrMalformedRequest, s)
}

// p2pNATManager is what p2p.Config.NATManager takes.
type p2pNATManager = func(network.Network) basichost.NATManager

var (
	_ status.Source       = (*Appliance)(nil)
	_ admin.Backend       = (*Appliance)(nil)
	_ admin.BranchBackend = (*Appliance)(nil)
)

// configOwner is the owner set by configuration as provisioning takes it
// (nil for none); Validate and startNode have checked it parses.
func (a *Appliance) configOwner() ed25519.PublicKey {
	if a.cfg.Owner == "" {
		return nil
	}
	k, err := channel.ParseIdentityKey(a.cfg.Owner)
	if err != nil {
		return nil
	}
	return ed25519.PublicKey(k[:])
}
