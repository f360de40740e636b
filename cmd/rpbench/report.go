package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Params sizes every scenario. FullParams are the defaults; ShortParams
// are what make bench runs; TinyParams are for the test.
type Params struct {
	Writers        int           `json:"writers"`
	Window         int           `json:"window"`
	IngestMessages int           `json:"ingest_messages"`
	VerifyFor      time.Duration `json:"verify_for"`
	Clients        int           `json:"clients"`
	ClientStep     int           `json:"client_step"`
	IdleFor        time.Duration `json:"idle_for"`
	Pairs          int           `json:"pairs"`
	Rate           int           `json:"rate"`
	RelayFor       time.Duration `json:"relay_for"`
	Shared         int           `json:"shared"`
	Missed         int           `json:"missed"`
	DHTNodes       int           `json:"dht_nodes"`
	DHTLookups     int           `json:"dht_lookups"`
	Timeout        time.Duration `json:"timeout"`
	Body           int           `json:"body"`

	Logger *slog.Logger `json:"-"`
}

// FullParams is the default run: the targets at full size.
func FullParams() Params {
	return Params{
		Writers: 64, Window: 16, IngestMessages: 20000, VerifyFor: 2 * time.Second,
		Clients: 6000, ClientStep: 500, IdleFor: 5 * time.Second,
		Pairs: 50, Rate: 1000, RelayFor: 20 * time.Second,
		Shared: 1000, Missed: 5000,
		DHTNodes: 60, DHTLookups: 20,
		Timeout: 5 * time.Minute, Body: 200,
	}
}

// ShortParams keeps every scenario well under a minute on 2 cores.
func ShortParams() Params {
	return Params{
		Writers: 64, Window: 16, IngestMessages: 4000, VerifyFor: time.Second,
		Clients: 1500, ClientStep: 500, IdleFor: 2 * time.Second,
		Pairs: 20, Rate: 1000, RelayFor: 5 * time.Second,
		Shared: 200, Missed: 1000,
		DHTNodes: 30, DHTLookups: 8,
		Timeout: 90 * time.Second, Body: 200,
	}
}

// TinyParams runs each scenario's code paths once, in seconds.
func TinyParams() Params {
	return Params{
		Writers: 4, Window: 4, IngestMessages: 100, VerifyFor: 100 * time.Millisecond,
		Clients: 20, ClientStep: 10, IdleFor: 200 * time.Millisecond,
		Pairs: 2, Rate: 100, RelayFor: 500 * time.Millisecond,
		Shared: 10, Missed: 30,
		DHTNodes: 6, DHTLookups: 2,
		Timeout: 60 * time.Second, Body: 200,
	}
}

// override takes q's sizes for every field whose flag was not set.
func (p Params) override(q Params, set map[string]bool) Params {
	keep := func(flag string, dst *int, v int) {
		if !set[flag] {
			*dst = v
		}
	}
	keep("writers", &p.Writers, q.Writers)
	keep("window", &p.Window, q.Window)
	keep("ingest-messages", &p.IngestMessages, q.IngestMessages)
	keep("clients", &p.Clients, q.Clients)
	keep("pairs", &p.Pairs, q.Pairs)
	keep("rate", &p.Rate, q.Rate)
	keep("missed", &p.Missed, q.Missed)
	keep("dht-nodes", &p.DHTNodes, q.DHTNodes)
	if !set["relay-for"] {
		p.RelayFor = q.RelayFor
	}
	if !set["timeout"] {
		p.Timeout = q.Timeout
	}
	p.VerifyFor, p.ClientStep, p.IdleFor = q.VerifyFor, q.ClientStep, q.IdleFor
	p.Shared, p.DHTLookups, p.Body = q.Shared, q.DHTLookups, q.Body
	return p
}

// Metric is one figure. A Ratio metric compares two figures measured in
// the same run (unit "x").
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Result is one scenario's figures.
type Result struct {
	Scenario   string   `json:"scenario"`
	Metrics    []Metric `json:"metrics"`
	Limit      string   `json:"limit,omitempty"` // what bounds the figure
	Target     string   `json:"target,omitempty"`
	TargetMet  *bool    `json:"target_met,omitempty"`
	Seconds    float64  `json:"seconds"`
	CPUSeconds float64  `json:"cpu_seconds"` // this process and its node processes, user+system
	// CPUBusy is CPUSeconds over wall time and cores: well below 1, the
	// scenario waited on something else (fsync, round trips).
	CPUBusy float64 `json:"cpu_busy"`
	Load    string  `json:"load_after"`
	Error   string  `json:"error,omitempty"`
}

func (r *Result) add(name string, v float64, unit string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

func (r *Result) target(desc string, met bool) {
	r.Target, r.TargetMet = desc, &met
}

// Report is a whole run.
type Report struct {
	Start     time.Time `json:"start"`
	Machine   Machine   `json:"machine"`
	Results   []Result  `json:"results"`
	LoadAfter string    `json:"load_after"`
}

// Machine says what the figures were measured on and how busy it was.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GoVersion  string `json:"go"`
	LoadBefore string `json:"load_before"`
}

func machine() Machine {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return Machine{CPU: fmt.Sprintf("%s x%d", cpu, runtime.NumCPU()), Cores: runtime.NumCPU(),
		GoVersion: runtime.Version(), LoadBefore: loadAvg()}
}

// loadAvg is the 1, 5 and 15 minute load averages: other work on a
// shared machine shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// withChildrenCPU is selfCPU plus the CPU of node processes that have
// exited (been waited for).
func withChildrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return selfCPU()
	}
	return selfCPU() + time.Duration(ru.Utime.Nano()+ru.Stime.Nano())
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "\n== %s  (%.1f s, %.1f CPU-s = %.0f %% of the cores, load %s)\n", r.Scenario, r.Seconds, r.CPUSeconds, 100*r.CPUBusy, r.Load)
	for _, m := range r.Metrics {
		note := ""
		if m.Note != "" {
			note = "  # " + m.Note
		}
		fmt.Fprintf(w, "  %-34s %14s %-10s%s\n", m.Name, fmtVal(m.Value), m.Unit, note)
	}
	if r.Target != "" {
		verdict := "NOT MET"
		if r.TargetMet != nil && *r.TargetMet {
			verdict = "met"
		}
		fmt.Fprintf(w, "  target: %s: %s\n", r.Target, verdict)
	}
	if r.Limit != "" {
		fmt.Fprintf(w, "  limited by: %s\n", r.Limit)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  ERROR: %s\n", r.Error)
	}
}

func fmtVal(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e12 && v > -1e12:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
