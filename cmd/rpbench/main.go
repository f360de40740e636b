// Command rpbench drives real redPanda nodes and many light clients over
// loopback and reports what one node serves: ingest, idle capacity, relay
// latency (beside a gossipsub baseline on the same topology and load),
// resync cost and DHT lookups. Every run is bounded in count and time and
// binds to loopback only: the nodes listen on 127.0.0.1, and each client
// dials from a 127/8 address of its own, in turn in different /24s
// (internal/loopback), as phones in many homes would, so that the node's
// per-address and per-prefix limits hold them as they hold phones. It
// prints a table, or JSON with --json.
//
// It must not be imported: it is a tool, and it knows the node only
// through node, node/peersync, node/routing, node/discovery and node/store.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(roleEnv) == roleNode {
		if err := runNodeChild(); err != nil {
			fmt.Fprintln(os.Stderr, "rpbench node:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "rpbench:", err)
		os.Exit(1)
	}
}

// scenarios in the order they run.
var scenarios = []struct {
	name string
	run  func(context.Context, Params) (Result, error)
}{
	{"ingest", runIngest},
	{"relay", runRelay},
	{"resync", runResync},
	{"dht", runDHT},
	// Last: its thousands of in-process clients leave this process with a
	// heap of gigabytes that the runtime and the kernel are still handing
	// back while the next scenario runs; relay right after it measured 20-40x
	// its latency when run alone.
	{"capacity", runCapacity},
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rpbench", flag.ContinueOnError)
	var (
		asJSON  = fs.Bool("json", false, "print JSON instead of a table")
		short   = fs.Bool("short", false, "short run of every scenario (what make bench runs)")
		tiny    = fs.Bool("tiny", false, "smallest run that still exercises every path (tests)")
		only    = fs.String("scenarios", "", "comma-separated subset of: ingest,relay,resync,dht,capacity")
		verbose = fs.Bool("v", false, "log the nodes' warnings to stderr")
		cpuprof = fs.String("cpuprofile", "", "write a CPU profile of this process to `file`, and of each node process to file.NAME")
		tracef  = fs.String("trace", "", "write an execution trace to `file`, and of each node process to file.NAME (go tool trace; -pprof=sync shows where goroutines wait)")
	)
	p := FullParams()
	fs.IntVar(&p.Writers, "writers", p.Writers, "ingest: concurrent writers")
	fs.IntVar(&p.Window, "window", p.Window, "ingest: pushes each writer keeps in flight (1: wait for each ack)")
	fs.IntVar(&p.IngestMessages, "ingest-messages", p.IngestMessages, "ingest: messages in total")
	fs.IntVar(&p.Clients, "clients", p.Clients, "capacity: clients to ramp up to")
	fs.IntVar(&p.Pairs, "pairs", p.Pairs, "relay: client pairs (one on S1, one on S2, one channel each)")
	fs.IntVar(&p.Rate, "rate", p.Rate, "relay: messages per second in total")
	fs.DurationVar(&p.RelayFor, "relay-for", p.RelayFor, "relay: how long to send")
	fs.IntVar(&p.Missed, "missed", p.Missed, "resync: messages missed while offline (spread over a day)")
	fs.IntVar(&p.DHTNodes, "dht-nodes", p.DHTNodes, "dht: nodes in the network")
	fs.DurationVar(&p.Timeout, "timeout", p.Timeout, "bound on each scenario")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Presets replace the defaults but not flags given explicitly.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *tiny:
		p = p.override(TinyParams(), set)
	case *short:
		p = p.override(ShortParams(), set)
	}
	level := slog.LevelError + 1
	if *verbose {
		level = slog.LevelWarn
	}
	p.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	for s := range want {
		if !known(s) {
			return fmt.Errorf("unknown scenario %q", s)
		}
	}
	// Node processes profile and trace themselves into FILE.NAME.
	childProfile, childTrace = *cpuprof, *tracef
	stopProfiles, err := startProfiles(*cpuprof, *tracef)
	if err != nil {
		return err
	}
	defer stopProfiles()
	rep := Report{Start: time.Now(), Machine: machine()}
	for _, sc := range scenarios {
		if len(want) > 0 && !want[sc.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := runOne(ctx, sc.name, sc.run, p)
		rep.Results = append(rep.Results, r)
		if !*asJSON {
			printResult(out, r)
		}
	}
	rep.LoadAfter = loadAvg()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "\nmachine: %s; load average before %s, after %s\n", rep.Machine.CPU, rep.Machine.LoadBefore, rep.LoadAfter)
	return nil
}

func known(s string) bool {
	for _, sc := range scenarios {
		if sc.name == s {
			return true
		}
	}
	return false
}

// runOne bounds a scenario in time and records its CPU use and the
// machine's load around it.
func runOne(ctx context.Context, name string, fn func(context.Context, Params) (Result, error), p Params) Result {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	start := time.Now()
	cpu0 := withChildrenCPU() // its node processes exit within it
	g0 := runtime.NumGoroutine()
	r, err := fn(ctx, p)
	// A scenario must leave nothing running that would load the next one.
	for i := 0; i < 50 && runtime.NumGoroutine() > g0+16; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if left := runtime.NumGoroutine() - g0; left > 16 {
		r.add("goroutines left running after the scenario", float64(left), "goroutines")
	}
	r.Scenario = name
	r.Seconds = time.Since(start).Seconds()
	r.CPUSeconds = (withChildrenCPU() - cpu0).Seconds()
	r.CPUBusy = r.CPUSeconds / r.Seconds / float64(runtime.NumCPU())
	r.Load = loadAvg()
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// startProfiles starts a CPU profile into cpuFile and an execution trace
// into traceFile, each only if named; stop ends both and closes the files.
func startProfiles(cpuFile, traceFile string) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	start := func(name string, begin func(io.Writer) error, end func()) error {
		if name == "" {
			return nil
		}
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		if err := begin(f); err != nil {
			f.Close()
			return err
		}
		stops = append(stops, func() { end(); f.Close() })
		return nil
	}
	if err := start(cpuFile, pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		stop()
		return nil, err
	}
	if err := start(traceFile, trace.Start, trace.Stop); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
