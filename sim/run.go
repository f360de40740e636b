package sim

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Config describes a run. Zero fields take the defaults written beside
// them.
type Config struct {
	// Homes is the number of home nodes (N). Default 30.
	Homes int
	// Owners per home: the people whose channels it serves. Default 2.
	Owners int
	// Degree of the small-world ring over homes (friends per person,
	// roughly); default 6. Rewire: the share of friendships moved to a
	// random home; default 0.1.
	Degree int
	Rewire float64
	// ChannelsPerPerson each person creates; default 2. DMShare of them
	// are one-to-one conversations, the rest groups of 3–8; default 0.6.
	ChannelsPerPerson int
	DMShare           float64
	// MessagesPerDay each person posts; default 40.
	MessagesPerDay float64
	// NATShare of the homes have no port mapping (reachable only from
	// addresses they sent to). Default 0.
	NATShare float64
	// Regions the homes are spread over; default 4.
	Regions int
	// ConnLow and ConnHigh are the connection manager's water marks of
	// every home (p2p.ConnMgr); zero: the node's defaults (64, 128).
	// Connections to registered phones and to the super nodes a channel
	// syncs with are protected and never trimmed.
	ConnLow, ConnHigh int
	// ConnGrace is every home's connection-manager grace period (new
	// connections are not trimmed within it); zero: the node's default
	// (1 min).
	ConnGrace time.Duration `json:",omitempty"`
	// MaxLookupBackoff is every home's discovery.Config.MaxLookupBackoff
	// (0: the node's default), to compare upkeep policies.
	MaxLookupBackoff time.Duration `json:",omitempty"`
	// RefreshPeriod is every home's discovery.Config.RefreshPeriod (0:
	// kad-dht's default).
	RefreshPeriod time.Duration `json:",omitempty"`

	// Start is the virtual time of day (UTC) the run begins at; default
	// 21:00, so that the steady window crosses midnight (the key
	// rotation).
	Start time.Duration
	// Join is the span over which the homes come up; default 10 min.
	Join time.Duration
	// Warmup after the last home joined, before measuring; default 20 min.
	Warmup time.Duration
	// Steady is the measured window; default 2 h.
	Steady time.Duration
	// Lookups measured at the end of the steady window; default 100.
	Lookups int
	// Faults to run after the steady window.
	Faults Faults

	// Seed makes the layout, identities and keys reproducible; default 1.
	Seed uint64
	// Dir holds the homes' data directories (a fresh directory inside
	// it, removed at the end); default os.TempDir().
	Dir string
	// Logger receives the nodes' logs; default: discarded.
	Logger *slog.Logger `json:"-"`
	// Progress receives a line per step; default: discarded.
	Progress io.Writer `json:"-"`
	// AfterSteady, if set, is called at the end of the steady window,
	// every home up (rpsim writes its heap profile there).
	AfterSteady func() `json:"-"`
}

// Faults are the fault phases, each run only when its duration is set.
type Faults struct {
	// Off: a share of the homes is switched off for OffFor, then back.
	OffShare float64
	OffFor   time.Duration
	// Split: the network is cut into two parts (by region) for SplitFor.
	SplitFor time.Duration
	// Skew: Skewed homes run with their clock a day ahead (half of them)
	// or behind (the other half) for SkewFor (default 1 h), then their
	// clocks are put right (NTP at last).
	Skewed  int
	SkewFor time.Duration
	// Churn: for ChurnFor, each home loses power or its router reboots
	// every ChurnEvery on average.
	ChurnFor   time.Duration
	ChurnEvery time.Duration
	// Settle is how long after each fault the network is left before
	// delivery is checked; default 30 min.
	Settle time.Duration
}

func (c *Config) setDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	defF := func(p *float64, v float64) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Homes, 30)
	def(&c.Owners, 2)
	def(&c.Degree, 6)
	defF(&c.Rewire, 0.1)
	def(&c.ChannelsPerPerson, 2)
	defF(&c.DMShare, 0.6)
	defF(&c.MessagesPerDay, 40)
	def(&c.Regions, 4)
	defD(&c.Start, 21*time.Hour)
	defD(&c.Join, 10*time.Minute)
	defD(&c.Warmup, 20*time.Minute)
	defD(&c.Steady, 2*time.Hour)
	def(&c.Lookups, 100)
	defD(&c.Faults.Settle, 30*time.Minute)
	defD(&c.Faults.SkewFor, time.Hour)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Run runs the simulation described by cfg in a synctest bubble of t
// (virtual time) and returns what it measured. Its error says what went
// wrong with the run itself; what went wrong in the network (lost
// messages, failed lookups) is in the Report.
func Run(t *testing.T, cfg Config) (*Report, error) {
	cfg.setDefaults()
	dir, err := os.MkdirTemp(cfg.Dir, "rpsim-")
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	defer os.RemoveAll(dir)
	var rep *Report
	wall, cpu := time.Now(), cpuTime()
	synctest.Test(t, func(*testing.T) {
		rep, err = run(cfg, dir)
	})
	if rep != nil {
		rep.Wall, rep.CPU = time.Since(wall), cpuTime()-cpu
	}
	return rep, err
}

func (w *World) progress(format string, args ...any) {
	heap, gs := memStats()
	fmt.Fprintf(w.cfg.Progress, "[virtual %s | wall %s, CPU %s | heap %d MiB, %d goroutines] %s\n",
		time.Now().UTC().Format("Jan 2 15:04:05"), wallClock().Sub(w.wall).Round(time.Second), (cpuTime() - w.cpu).Round(time.Second),
		heap>>20, gs, fmt.Sprintf(format, args...))
}

func run(cfg Config, dir string) (*Report, error) {
	t0 := time.Now()
	// The bubble starts at midnight; begin at the configured time of day.
	time.Sleep(cfg.Start)
	w, rng, err := newWorld(cfg, dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, Homes: cfg.Homes, People: len(w.g.People), Channels: len(w.g.Channels)}
	w.nw.Start()
	defer w.nw.Close()
	defer w.stopAll()
	w.progress("%d homes, %d people, %d channels; joining over %v", cfg.Homes, len(w.g.People), len(w.g.Channels), cfg.Join)

	if err := w.join(rng); err != nil {
		return nil, err
	}
	stopTicker := w.ticker(30 * time.Minute)
	defer stopTicker()
	rep.JoinWall, rep.JoinCPU = wallClock().Sub(w.wall), cpuTime()-w.cpu
	rep.JoinHeapBytes, rep.JoinGoroutines = memStats()
	w.progress("all joined; warming up %v", cfg.Warmup)
	time.Sleep(cfg.Warmup)

	stopPosting := w.startPosting(rng)
	steady := w.window(rep, "steady", cfg.Steady)
	w.measureLookups(steady, rng, cfg.Lookups)
	w.measureTables(steady)
	w.measureRecords(steady)
	w.measureCosts(steady, rng, 10)
	rep.HeapBytes, rep.Goroutines = memStats()
	if cfg.AfterSteady != nil {
		cfg.AfterSteady()
	}

	f := cfg.Faults
	if f.OffFor > 0 && f.OffShare > 0 {
		if err := w.faultOff(rep, rng); err != nil {
			return nil, err
		}
	}
	if f.SplitFor > 0 {
		w.faultSplit(rep)
	}
	if f.ChurnFor > 0 && f.ChurnEvery > 0 {
		if err := w.faultChurn(rep, rng); err != nil {
			return nil, err
		}
	}
	if f.Skewed > 0 {
		w.faultSkew(rep, rng)
	}
	stopPosting()
	// The last posts need a moment to arrive; after faults, what they
	// left behind needs longer.
	settle := f.Settle
	if len(rep.Phases) == 1 {
		settle = 2 * time.Minute
	}
	w.progress("settling %v", settle)
	time.Sleep(settle)
	w.measureTables(rep.Phases[len(rep.Phases)-1])
	if err := w.checkDelivery(rep); err != nil {
		return nil, err
	}
	rep.Virtual = time.Since(t0) - cfg.Start
	return rep, nil
}

// newWorld lays out cfg's network, people, channels and homes (their
// identities on disk under dir), nothing started; the returned rng goes
// on to draw the run's events.
func newWorld(cfg Config, dir string) (*World, *rand.Rand, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	keyRand := rand.NewChaCha8([32]byte{byte(cfg.Seed), byte(cfg.Seed >> 8), byte(cfg.Seed >> 16), byte(cfg.Seed >> 24), 'r', 'p', 's', 'i', 'm'})

	links := make([]Link, cfg.Homes)
	for i := range links {
		up := logUniform(rng, 5e6, 50e6)
		links[i] = Link{
			Access:   time.Duration(2+rng.IntN(7)) * time.Millisecond,
			Region:   rng.IntN(cfg.Regions),
			UpBits:   int(up),
			DownBits: int(min(up*(4+6*rng.Float64()), 250e6)),
			NAT:      rng.Float64() < cfg.NATShare,
		}
	}
	w := &World{
		wall:  wallClock(),
		cpu:   cpuTime(),
		cfg:   cfg,
		nw:    NewNetwork(rng, links, cfg.Regions),
		g:     NewGraph(rng, cfg.Homes, cfg.Owners, cfg.Degree, cfg.Rewire, cfg.DMShare, cfg.ChannelsPerPerson, keyRand),
		log:   cfg.Logger,
		dir:   dir,
		track: newTracker(),
	}
	for i := range cfg.Homes {
		d := filepath.Join(dir, fmt.Sprintf("home-%04d", i))
		id, err := newHomeIdentity(d, keyRand)
		if err != nil {
			return nil, nil, fmt.Errorf("sim: home %d identity: %w", i, err)
		}
		w.homes = append(w.homes, &Home{I: i, ID: id, Dir: d, Meter: &Meter{}})
	}
	return w, rng, nil
}

// ticker writes a progress line every d of virtual time.
func (w *World) ticker(d time.Duration) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				w.progress("%d posts", len(w.track.snapshot()))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo * pow(hi/lo, rng.Float64())
}

// join brings the homes up at random moments over cfg.Join; each is
// introduced to the homes of friends it shares a channel with that are
// already up.
func (w *World) join(rng *rand.Rand) error {
	order := rng.Perm(len(w.homes))
	at := make([]time.Duration, len(order))
	for k := range order {
		at[k] = time.Duration(rng.Int64N(int64(w.cfg.Join)))
	}
	slices.Sort(at)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		up    = make([]bool, len(w.homes))
	)
	start := time.Now()
	for k, i := range order {
		time.Sleep(time.Until(start.Add(at[k])))
		h := w.homes[i]
		if err := w.start(h); err != nil {
			return err
		}
		mu.Lock()
		up[i] = true
		mu.Unlock()
		for _, ch := range w.g.HomeChannels(i) {
			for _, o := range introductions(ch, i) {
				mu.Lock()
				isUp := up[o]
				mu.Unlock()
				if !isUp {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := w.introduce(ctx, h, w.homes[o], ch); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						w.log.Info("introduction failed", "from", i, "to", o, "err", err)
					}
				}()
			}
		}
		if (k+1)%max(1, len(order)/10) == 0 {
			w.progress("%d/%d homes up", k+1, len(order))
		}
	}
	wg.Wait()
	return nil
}

// introductions lists the homes home h is introduced to for ch: an
// invitation carries the creator's node hint to each invitee, and the
// answer carries the invitee's back.
func introductions(ch *Channel, h int) []int {
	creator := ch.Homes[0]
	if h != creator {
		return []int{creator}
	}
	return ch.Homes[1:]
}

func (w *World) stopAll() {
	var wg sync.WaitGroup
	for _, h := range w.homes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.stop(h); err != nil {
				w.log.Warn("close", "home", h.I, "err", err)
			}
		}()
	}
	wg.Wait()
}

// window lets d pass (people post meanwhile) and measures the traffic
// over it as a phase of the report.
func (w *World) window(rep *Report, name string, d time.Duration) *Phase {
	ph, before := w.begin(rep, name, d)
	time.Sleep(d)
	w.end(ph, before)
	return ph
}

// begin starts phase name, planned to last d: posts made from now on
// belong to it.
func (w *World) begin(rep *Report, name string, d time.Duration) (*Phase, traffic) {
	w.phaseName.Store(&name)
	ph := &Phase{Name: name, Start: time.Now(), Length: d}
	rep.Phases = append(rep.Phases, ph)
	w.progress("phase %s: %v", name, d)
	return ph, w.traffic()
}

// end measures the traffic since begin.
func (w *World) end(ph *Phase, before traffic) {
	ph.Length = time.Since(ph.Start)
	if ph.Length > 0 {
		ph.PerDay = w.traffic().sub(before).perDay(ph.Length)
	}
	w.progress("phase %s done: %d posts so far", ph.Name, len(w.track.snapshot()))
}

// startPosting starts every person posting; the returned function stops
// them.
func (w *World) startPosting(rng *rand.Rand) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range w.g.People {
		seed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.poster(ctx, p, rand.New(rand.NewPCG(seed, 1)))
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// poster posts person p's messages while ctx lasts, at MessagesPerDay,
// each to one of p's channels, through p's home node (as the phone's
// push to it). A post counts once the node acknowledged it (durable).
func (w *World) poster(ctx context.Context, p *Person, rng *rand.Rand) {
	mean := time.Duration(float64(24*time.Hour) / w.cfg.MessagesPerDay)
	body := make([]byte, 200)
	for {
		wait := time.Duration(rng.ExpFloat64() * float64(mean))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if len(p.Channels) == 0 {
			continue
		}
		h := w.homes[p.Home]
		n := h.Node()
		if n == nil {
			w.notPosted.Add(1) // the phone finds its home off
			continue
		}
		ch := p.Channels[rng.IntN(len(p.Channels))]
		for i := range body {
			body[i] = byte('a' + rng.IntN(26))
		}
		// The phone's clock stamps the message; it is right.
		env, err := ch.Key.Seal(p.Identity, channel.KindText, body, time.Now(), crand.Reader)
		if err != nil {
			w.log.Error("seal", "err", err)
			continue
		}
		if _, err := n.Sync.Publish(ctx, env); err != nil {
			if ctx.Err() == nil {
				w.refused.Add(1)
				w.log.Info("post refused by its home", "home", p.Home, "err", err)
			}
			continue
		}
		w.track.add(&post{id: env.ID(), ch: ch, from: p.Home, phase: *w.phaseName.Load(), acked: time.Now()})
	}
}

// wallClock is the real monotonic clock, which a synctest bubble does
// not fake: progress lines show how fast virtual time runs.
func wallClock() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}
	}
	return time.Unix(ts.Unix())
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memStats is the simulator's own heap, for the report.
func memStats() (heap uint64, goroutines int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, runtime.NumGoroutine()
}

// ShortConfig is the run of TestSim (in `make test`) and rpsim -short:
// eight homes, half an hour of life, then every fault briefly (about 15 s
// of CPU; virtual time, so a loaded machine makes it slower, not
// different).
func ShortConfig() Config {
	return Config{
		Homes:   8,
		Join:    3 * time.Minute,
		Warmup:  7 * time.Minute,
		Steady:  30 * time.Minute,
		Lookups: 16,
		Faults: Faults{
			OffShare: 0.3, OffFor: 30 * time.Minute,
			SplitFor: 10 * time.Minute,
			ChurnFor: 30 * time.Minute, ChurnEvery: 60 * time.Minute,
			Skewed: 2, SkewFor: 20 * time.Minute,
			Settle: 8 * time.Minute,
		},
	}
}
