// Command rpsim runs the network simulation of package sim (real home
// nodes on a simulated internet, in virtual time) at the sizes asked,
// prints what each run measured, and with -out writes the reports as
// JSON and draws the curves across sizes as PNG charts. With -plot it
// draws the charts from earlier JSON outputs (several, labelled, to
// compare two builds).
//
//	go run ./cmd/rpsim -n 1000                  # one size, default phases and faults
//	go run ./cmd/rpsim -n 100,300,1000 -out out # the curves
//	go run ./cmd/rpsim -short                   # what `go test -short ./sim` runs
//
// A run's CPU and memory grow with the homes and the virtual time: a
// thousand homes take gigabytes of RAM and a long while on two cores
// (docs/SCALE.md has the figures); run it niced.
//
// It must not be imported: it is a tool over package sim.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/sim"
)

// Output is what -out writes and -plot reads.
type Output struct {
	Label string        `json:"label"`
	Runs  []*sim.Report `json:"runs"`
}

func main() {
	// synctest's bubbles need a *testing.T: the runs happen inside one
	// test of the testing package's own runner, so its -test.* flags
	// exist too.
	testing.Init()
	fs := flag.CommandLine
	var (
		sizes    = fs.String("n", "100", "numbers of homes to simulate, comma separated (e.g. 100,300,1000)")
		short    = fs.Bool("short", false, "the small run `go test -short ./sim` makes (other flags given still apply)")
		out      = fs.String("out", "", "directory to write rpsim.json and the charts (PNG) into")
		label    = fs.String("label", "", "label of this build's runs in the JSON and the charts")
		plot     = fs.String("plot", "", "draw the charts from these JSON outputs instead of running (FILE or LABEL=FILE, comma separated; files of one label make one series); needs -out")
		quiet    = fs.Bool("q", false, "no progress lines")
		logFile  = fs.String("log", "", "write the nodes' logs (debug) to this file")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
		memProf  = fs.String("memprofile", "", "write a heap profile to this file, and the goroutines to FILE.goroutines, at the end of each run's steady window (every home up; the last run's are kept)")
		steady   = fs.Duration("steady", 0, "measured window of normal life (default 2h)")
		join     = fs.Duration("join", 0, "span over which the homes come up (default 10m)")
		warmup   = fs.Duration("warmup", 0, "wait after joining before measuring (default 20m)")
		lookups  = fs.Int("lookups", 0, "DHT lookups measured per phase (default 100)")
		owners   = fs.Int("owners", 0, "people per home (default 2)")
		degree   = fs.Int("degree", 0, "friends per person on the small-world ring (default 6)")
		chans    = fs.Int("channels", 0, "channels each person creates (default 2)")
		rate     = fs.Float64("rate", 0, "messages each person posts per day (default 40)")
		nat      = fs.Float64("nat", 0, "share of homes behind NAT without a port mapping")
		connLow  = fs.Int("conn-low", 0, "connection manager low water mark of every home (default: the node's, 64)")
		connHigh = fs.Int("conn-high", 0, "connection manager high water mark of every home (default: the node's, 128)")
		connGr   = fs.Duration("conn-grace", 0, "connection manager grace period of every home: new connections are not trimmed within it (default: the node's, 1m)")
		maxRSS   = fs.Float64("max-rss", 0, "stop the run (exit status 3) when the process's resident memory passes this many GiB, after a last progress line; 0: no bound")
		lookupBO = fs.Duration("lookup-backoff", 0, "longest wait between the upkeep's fruitless provider lookups of a channel (default: the node's, the reprovide interval)")
		rtRefr   = fs.Duration("rt-refresh", 0, "kad-dht routing-table refresh period of every home (default: kad-dht's, 10m)")
		seed     = fs.Uint64("seed", 1, "seed of the layout, identities and keys")
		dir      = fs.String("dir", "", "directory for the homes' data (default: /dev/shm if present, else the temp dir)")
		faults   = fs.String("faults", "off,split,skew,churn", "fault phases to run after the steady window (comma separated, or none)")
		offShare = fs.Float64("off-share", 0.3, "share of homes switched off")
		offFor   = fs.Duration("off-for", 24*time.Hour, "how long they stay off")
		splitFor = fs.Duration("split-for", 2*time.Hour, "how long the network stays split")
		skewed   = fs.Int("skewed", 2, "homes whose clock is a day off (ahead, behind, ...) in the skew phase")
		skewFor  = fs.Duration("skew-for", time.Hour, "how long their clocks stay a day off")
		churnFor = fs.Duration("churn-for", 6*time.Hour, "how long the churn phase lasts")
		churnEv  = fs.Duration("churn-every", 24*time.Hour, "mean time between outages of one home during churn")
		settle   = fs.Duration("settle", 0, "wait after each fault before checking delivery (default 30m)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rpsim [flags]\n")
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Name, "test.") {
				fmt.Fprintf(fs.Output(), "  -%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	flag.Parse()
	if *plot != "" {
		if *out == "" {
			fatal(errors.New("-plot needs -out"))
		}
		var outs []Output
		for _, spec := range strings.Split(*plot, ",") {
			lbl, file, found := strings.Cut(spec, "=")
			if !found {
				lbl, file = "", spec
			}
			o, err := readOutput(file)
			if err != nil {
				fatal(err)
			}
			if lbl != "" {
				o.Label = lbl
			}
			// Runs of one label from several files (sizes run apart)
			// make one series.
			if i := slices.IndexFunc(outs, func(p Output) bool { return p.Label == o.Label }); i >= 0 {
				outs[i].Runs = append(outs[i].Runs, o.Runs...)
				continue
			}
			outs = append(outs, o)
		}
		for _, o := range outs {
			slices.SortStableFunc(o.Runs, func(a, b *sim.Report) int { return a.Homes - b.Homes })
		}
		fatal(os.MkdirAll(*out, 0o755))
		fatal(drawAll(*out, outs))
		return
	}
	nSet := false
	fs.Visit(func(f *flag.Flag) { nSet = nSet || f.Name == "n" })
	if *short && !nSet {
		*sizes = strconv.Itoa(sim.ShortConfig().Homes)
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fatal(fmt.Errorf("-n: %q is not a number of homes (at least 2)", s))
		}
		ns = append(ns, n)
	}
	base := sim.Config{Dir: *dir}
	if *short {
		base = sim.ShortConfig()
		base.Dir = *dir
	} else {
		set := map[string]bool{}
		for _, f := range strings.Split(*faults, ",") {
			set[strings.TrimSpace(f)] = true
		}
		if set["off"] {
			base.Faults.OffShare, base.Faults.OffFor = *offShare, *offFor
		}
		if set["split"] {
			base.Faults.SplitFor = *splitFor
		}
		if set["skew"] {
			base.Faults.Skewed, base.Faults.SkewFor = *skewed, *skewFor
		}
		if set["churn"] {
			base.Faults.ChurnFor, base.Faults.ChurnEvery = *churnFor, *churnEv
		}
	}
	setIf(&base.Steady, *steady)
	setIf(&base.Join, *join)
	setIf(&base.Warmup, *warmup)
	setIf(&base.Faults.Settle, *settle)
	setIf(&base.Lookups, *lookups)
	setIf(&base.Owners, *owners)
	setIf(&base.Degree, *degree)
	setIf(&base.ChannelsPerPerson, *chans)
	setIf(&base.MessagesPerDay, *rate)
	setIf(&base.NATShare, *nat)
	setIf(&base.ConnLow, *connLow)
	setIf(&base.ConnHigh, *connHigh)
	setIf(&base.ConnGrace, *connGr)
	setIf(&base.MaxLookupBackoff, *lookupBO)
	setIf(&base.RefreshPeriod, *rtRefr)
	base.Seed = *seed
	if base.Dir == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			// bbolt and its fdatasync on tmpfs: real files, without a
			// thousand homes' syncs queueing on one disk.
			base.Dir = "/dev/shm"
		}
	}
	// The runs' data go into a directory of this process, removed when it
	// is stopped (a signal) as well as when it ends: on /dev/shm a stopped
	// run's homes would otherwise hold memory until the next boot.
	own, err := os.MkdirTemp(base.Dir, "rpsim-")
	if err != nil {
		fatal(err)
	}
	base.Dir = own
	cleanup := func() { os.RemoveAll(own) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		stopProfile()
		cleanup()
		fmt.Fprintln(os.Stderr, "rpsim: stopped by", s)
		os.Exit(2)
	}()
	if *maxRSS > 0 {
		go watchRSS(int64(*maxRSS*(1<<30)), cleanup)
	}
	if !*quiet {
		base.Progress = os.Stderr
	}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		base.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fatal(err)
		}
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		// testing.Main exits without returning: stop the profile in the
		// test itself.
		stopProfile = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	if *memProf != "" {
		base.AfterSteady = func() {
			runtime.GC()
			f, err := os.Create(*memProf)
			if err != nil {
				fmt.Fprintln(os.Stderr, "rpsim:", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				fmt.Fprintln(os.Stderr, "rpsim:", err)
			}
			// The goroutines by where they wait, beside it: most of the
			// simulator's memory is per connection and per goroutine.
			g, err := os.Create(*memProf + ".goroutines")
			if err != nil {
				fmt.Fprintln(os.Stderr, "rpsim:", err)
				return
			}
			defer g.Close()
			if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
				fmt.Fprintln(os.Stderr, "rpsim:", err)
			}
		}
	}
	output := Output{Label: *label}
	failed := false
	tests := []testing.InternalTest{{Name: "rpsim", F: func(t *testing.T) {
		defer stopProfile()
		for _, n := range ns {
			cfg := base
			cfg.Homes = n
			rep, err := sim.Run(t, cfg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "rpsim: %d homes: %v\n", n, err)
				failed = true
				return
			}
			rep.WriteText(os.Stdout)
			fmt.Println()
			output.Runs = append(output.Runs, rep)
			if *out != "" {
				if err := writeOutput(filepath.Join(*out, "rpsim.json"), output); err != nil {
					fmt.Fprintln(os.Stderr, "rpsim:", err)
					failed = true
					return
				}
			}
		}
		if *out != "" {
			if err := drawAll(*out, []Output{output}); err != nil {
				fmt.Fprintln(os.Stderr, "rpsim:", err)
				failed = true
			}
		}
		if failed {
			t.Fail()
		}
	}}}
	// testing.Main parses nothing more (flags are parsed) and exits.
	// It exits without returning: the test removes the data.
	tests[0].F = func(f func(*testing.T)) func(*testing.T) {
		return func(t *testing.T) { defer cleanup(); f(t) }
	}(tests[0].F)
	testing.Main(func(string, string) (bool, error) { return true, nil }, tests, nil, nil)
}

// watchRSS stops the process once its resident memory passes limit
// bytes: a run too large for the machine ends with a line saying how
// far it got (the last progress line before it) instead of the kernel's
// OOM killer taking it, or another process, down.
func watchRSS(limit int64, cleanup func()) {
	page := int64(os.Getpagesize())
	for range time.Tick(5 * time.Second) {
		b, err := os.ReadFile("/proc/self/statm")
		if err != nil {
			return // not Linux: no bound
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return
		}
		pages, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return
		}
		if rss := pages * page; rss > limit {
			stopProfile()
			cleanup()
			fmt.Fprintf(os.Stderr, "rpsim: resident memory %.1f GiB passed -max-rss %.1f GiB; stopped\n", float64(rss)/(1<<30), float64(limit)/(1<<30))
			os.Exit(3)
		}
	}
}

// stopProfile ends the CPU profile, if one is being written.
var stopProfile = func() {}

func setIf[T int | float64 | time.Duration](p *T, v T) {
	if v > 0 {
		*p = v
	}
}

func fatal(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpsim:", err)
		os.Exit(1)
	}
}

func writeOutput(path string, o Output) error {
	b, err := json.MarshalIndent(o, "", " ")
	if err != nil {
		return fmt.Errorf("rpsim: encode: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

func readOutput(path string) (Output, error) {
	var o Output
	f, err := os.Open(path)
	if err != nil {
		return o, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("rpsim: %s: %w", path, err)
	}
	return o, nil
}

// drawAll draws the charts across sizes, one series per output (label)
// and statistic.
func drawAll(dir string, outs []Output) error {
	name := func(o Output, s string) string {
		if o.Label == "" {
			return s
		}
		return o.Label + " " + s
	}
	steady := func(r *sim.Report) *sim.Phase {
		for _, ph := range r.Phases {
			if ph.Name == "steady" {
				return ph
			}
		}
		return nil
	}
	type stat struct {
		label string
		get   func(*sim.Phase) (float64, bool)
	}
	across := func(title, ylabel string, logY bool, stats []stat) *chart {
		c := &chart{title: title, xlabel: "homes", ylabel: ylabel, logX: true, logY: logY}
		for oi, o := range outs {
			runs := slices.Clone(o.Runs)
			slices.SortFunc(runs, func(a, b *sim.Report) int { return a.Homes - b.Homes })
			for _, st := range stats {
				s := series{name: name(o, st.label), dashed: oi > 0}
				for _, r := range runs {
					ph := steady(r)
					if ph == nil {
						continue
					}
					if v, ok := st.get(ph); ok {
						s.xs, s.ys = append(s.xs, float64(r.Homes)), append(s.ys, v)
					}
				}
				c.series = append(c.series, s)
			}
		}
		return c
	}
	look := func(f func(*sim.LookupStats) float64) func(*sim.Phase) (float64, bool) {
		return func(ph *sim.Phase) (float64, bool) {
			if ph.Lookups == nil || ph.Lookups.Found == 0 {
				return 0, false
			}
			return f(ph.Lookups), true
		}
	}
	tab := func(f func(*sim.TableStats) float64) func(*sim.Phase) (float64, bool) {
		return func(ph *sim.Phase) (float64, bool) {
			if ph.Tables == nil {
				return 0, false
			}
			return f(ph.Tables), true
		}
	}
	day := func(f func(*sim.TrafficStats) float64) func(*sim.Phase) (float64, bool) {
		return func(ph *sim.Phase) (float64, bool) {
			if ph.PerDay == nil {
				return 0, false
			}
			return f(ph.PerDay), true
		}
	}
	charts := map[string]*chart{
		"lookup-latency.png": across("DHT lookup: time to the first serving home", "seconds", false, []stat{
			{"median", look(func(l *sim.LookupStats) float64 { return l.Latency.Median })},
			{"p99", look(func(l *sim.LookupStats) float64 { return l.Latency.P99 })},
		}),
		"lookup-hops.png": across("DHT lookup: hops to the first record, peers asked", "count", false, []stat{
			{"hops median", look(func(l *sim.LookupStats) float64 { return l.Hops.Median })},
			{"hops p99", look(func(l *sim.LookupStats) float64 { return l.Hops.P99 })},
			{"asked median", look(func(l *sim.LookupStats) float64 { return l.Asked.Median })},
		}),
		"records.png": across("Provider records stored per home", "records", false, []stat{
			{"median", func(ph *sim.Phase) (float64, bool) {
				if ph.Records == nil {
					return 0, false
				}
				return ph.Records.PerHome.Median, true
			}},
			{"p99", func(ph *sim.Phase) (float64, bool) {
				if ph.Records == nil {
					return 0, false
				}
				return ph.Records.PerHome.P99, true
			}},
		}),
		"traffic.png": across("Bytes per home per day (median, sent + received)", "bytes", true, []stat{
			{"DHT", day(func(t *sim.TrafficStats) float64 { return t.Kind[sim.KindDHT].Median })},
			{"sync (friends)", day(func(t *sim.TrafficStats) float64 { return t.Kind[sim.KindSync].Median })},
			{"on the wire", day(func(t *sim.TrafficStats) float64 { return t.Wire.Median })},
		}),
		"tables.png": across("Routing table size and open connections (median)", "peers", false, []stat{
			{"table size", tab(func(t *sim.TableStats) float64 { return t.Size.Median })},
			{"connections", tab(func(t *sim.TableStats) float64 { return t.Conns.Median })},
		}),
		"closest.png": across("Share of the 20 closest homes in the routing table (mean)", "%", false, []stat{
			{"held", tab(func(t *sim.TableStats) float64 { return 100 * t.Closest.Mean })},
		}),
	}
	// Delivery against the homes a channel spans, one line per size.
	dc := &chart{title: "Post to the last member's home (median)", xlabel: "homes the channel spans", ylabel: "seconds"}
	for oi, o := range outs {
		for _, r := range o.Runs {
			ph := steady(r)
			if ph == nil || ph.Delivery == nil {
				continue
			}
			s := series{name: name(o, fmt.Sprintf("%d homes", r.Homes)), dashed: oi > 0}
			for k := 2; k <= 16; k++ {
				if d, ok := ph.Delivery.ByHomes[k]; ok && d.N > 0 {
					s.xs, s.ys = append(s.xs, float64(k)), append(s.ys, d.Median)
				}
			}
			dc.series = append(dc.series, s)
		}
	}
	charts["delivery.png"] = dc
	// The simulator's own heap per home at the end of the steady window:
	// what limits the sizes it can run (docs/SCALE.md).
	hc := &chart{title: "Simulator heap per home (end of the steady window)", xlabel: "homes", ylabel: "MiB", logX: true}
	for oi, o := range outs {
		runs := slices.Clone(o.Runs)
		slices.SortFunc(runs, func(a, b *sim.Report) int { return a.Homes - b.Homes })
		s := series{name: name(o, "heap / homes"), dashed: oi > 0}
		for _, r := range runs {
			if r.HeapBytes > 0 && r.Homes > 0 {
				s.xs, s.ys = append(s.xs, float64(r.Homes)), append(s.ys, float64(r.HeapBytes)/float64(r.Homes)/(1<<20))
			}
		}
		hc.series = append(hc.series, s)
	}
	charts["sim-heap.png"] = hc
	for file, c := range charts {
		if err := c.write(filepath.Join(dir, file)); err != nil {
			return fmt.Errorf("rpsim: %s: %w", file, err)
		}
	}
	return nil
}
