package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/store"
)

// ingestChannels is how many channels the writers post to.
const ingestChannels = 8

// runIngest: W writers push pre-sealed messages to one node over loopback
// (each push returns once the node acknowledged it durable): a quarter of
// them one push in flight per writer, the rest with Window pushes in
// flight per writer (in chunks), then the same number of messages are
// published inside the node by W goroutines. The node is a process of its
// own (see child.go), so its CPU per message is measured apart from the
// writers'. Every rate is set against ed25519.Verify/s on all cores,
// measured in slices before, between and after the chunks of the pushes.
func runIngest(ctx context.Context, p Params) (Result, error) {
	var r Result
	dir, err := os.MkdirTemp("", "rpbench-ingest-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)

	envs, chs, err := sealIngest(p.IngestMessages, p.Body)
	if err != nil {
		return r, err
	}
	// The baseline stays crypto/ed25519; the node verifies with
	// curve25519-voi under the same rules, measured beside it so the
	// ratios can be read against either.
	verifiers := []func(pub ed25519.PublicKey, msg, sig []byte) bool{
		func(pub ed25519.PublicKey, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) },
		func(pub ed25519.PublicKey, msg, sig []byte) bool { return channel.ID(pub).VerifySignature(msg, sig) },
	}
	// The baseline is measured in slices around and between the chunks
	// of the pushes (below): the speed of a shared machine moves by 20-40 %
	// within seconds, and a baseline taken once, before, was as often off
	// as the figures it was meant to scale.
	var base verifySamples
	sample := func() { base.add(verifyRates(envs[0], p.VerifyFor/verifySlices, verifiers...)) }
	sample()

	n, err := startChild(ctx, filepath.Join(dir, "node"), childOpts{name: "ingest", capacity: p.Writers})
	if err != nil {
		return r, fmt.Errorf("node process: %w", err)
	}
	defer n.stop()
	if err := n.serve(ctx, chs...); err != nil {
		return r, err
	}

	shared, err := store.Open(filepath.Join(dir, "writers.db"), store.Options{Logger: p.Logger})
	if err != nil {
		return r, err
	}
	defer shared.Close()
	clients := make([]*lite, p.Writers)
	for i := range clients {
		c, err := newLite(dir, shared, p.Logger)
		if err != nil {
			return r, err
		}
		defer c.close()
		if err := c.session(ctx, n.info); err != nil {
			return r, err
		}
		clients[i] = c
	}
	// One in flight per writer first (a phone posting a message and
	// waiting for its ack), on a quarter of the messages, then each writer
	// with Window pushes in flight (a burst, media chunks, a queue of posts
	// sent after a reconnect): the rate the target is about.
	single := envs[:max(len(envs)/4, 1)]
	one, err := pushPhase(ctx, n, clients, single, 1)
	if err != nil {
		return r, fmt.Errorf("push one at a time: %w", err)
	}
	window := max(p.Window, 1)
	rest := envs[len(single):]
	if len(rest) == 0 {
		rest = envs
	}
	var many pushed
	// One slice before the pushes, one before each chunk, one after.
	chunks := verifySlices - 2
	chunk := (len(rest) + chunks - 1) / chunks
	for len(rest) > 0 {
		sample()
		c := rest[:min(chunk, len(rest))]
		rest = rest[len(c):]
		got, err := pushPhase(ctx, n, clients, c, window)
		if err != nil {
			return r, fmt.Errorf("push: %w", err)
		}
		many.add(got)
	}
	sample()
	verify, nodeVerify := base.mean(0), base.mean(1)
	r.add("ed25519.Verify (all cores)", verify, "verify/s")
	r.add("ed25519.Verify, slowest slice", base.min(0), "verify/s")
	r.add("ed25519.Verify, fastest slice", base.max(0), "verify/s")
	r.add("node's single verify, curve25519-voi (all cores)", nodeVerify, "verify/s")
	r.add("curve25519-voi / ed25519.Verify", nodeVerify/verify, "x")
	r.add("envelope size", float64(envs[0].Size()), "B")
	one.report(&r, "push one at a time", verify)
	many.report(&r, "push", verify)
	pushRate := many.rate()

	// The node seals these itself; it counts its CPU from after that.
	reply, err := n.ask(ctx, "publish %d %d %d", p.Writers, p.IngestMessages, p.Body)
	if err != nil {
		return r, fmt.Errorf("publish: %w", err)
	}
	var secs, cpuSecs float64
	if _, err := fmt.Sscan(reply, &secs, &cpuSecs); err != nil {
		return r, fmt.Errorf("publish reply %q: %w", reply, err)
	}
	published, pubCPU := time.Duration(secs*float64(time.Second)), time.Duration(cpuSecs*float64(time.Second))
	pubRate := float64(p.IngestMessages) / published.Seconds()
	r.add(fmt.Sprintf("publish, %d goroutines in the node", p.Writers), pubRate, "msg/s")
	r.add("publish / verify", pubRate/verify, "x")
	nodeCost(&r, "publish", pubCPU, published, p.IngestMessages, verify)
	r.target(fmt.Sprintf(">= 0.70 x verify with 64 writers (push over loopback, %d in flight per writer)", window), pushRate/verify >= 0.7 && p.Writers >= 64)
	r.Limit = "the two cores, shared by the node and the writers: the node's CPU per message (signatures checked in batches, the write-ahead log, the apply to bbolt, Noise and yamux) and the writers' (Noise, yamux, syscalls) add up to the cores' time; with one push in flight per writer, round trips and the log's fdatasync instead (writers / latency). The 'ceiling' lines give the rate the node would reach with both cores to itself"
	return r, nil
}

// verifySlices is how many slices the verify baseline is measured in.
const verifySlices = 6

// verifySamples are the verify rates of the baseline's slices.
type verifySamples [][]float64

func (v *verifySamples) add(rates []float64) { *v = append(*v, rates) }

func (v verifySamples) mean(i int) float64 {
	sum := 0.0
	for _, r := range v {
		sum += r[i]
	}
	return sum / float64(len(v))
}

func (v verifySamples) min(i int) float64 {
	m := v[0][i]
	for _, r := range v {
		m = math.Min(m, r[i])
	}
	return m
}

func (v verifySamples) max(i int) float64 {
	m := v[0][i]
	for _, r := range v {
		m = math.Max(m, r[i])
	}
	return m
}

// pushed is what one push phase measured.
type pushed struct {
	writers, window, n int
	took               time.Duration
	nodeCPU, selfCPU   time.Duration
	sigs               peersync.SignatureStats // the node's, during the phase (Largest: so far)
}

func (p pushed) rate() float64 { return float64(p.n) / p.took.Seconds() }

// add sums o into p: the phases of one push split into chunks.
func (p *pushed) add(o pushed) {
	p.writers, p.window = o.writers, o.window
	p.n += o.n
	p.took += o.took
	p.nodeCPU += o.nodeCPU
	p.selfCPU += o.selfCPU
	p.sigs.Checks += o.sigs.Checks
	p.sigs.Batched += o.sigs.Batched
	p.sigs.Batches += o.sigs.Batches
	p.sigs.Largest = max(p.sigs.Largest, o.sigs.Largest)
}

// pushPhase pushes envs to node n from the writers, window pushes in
// flight per writer, each returning once acknowledged durable, and
// measures the time and the CPU of the node and of this process.
func pushPhase(ctx context.Context, n *childNode, clients []*lite, envs []*channel.Envelope, window int) (pushed, error) {
	sigs0, err := n.sigStats(ctx)
	if err != nil {
		return pushed{}, err
	}
	cpu0, self0 := n.cpu(), selfCPU()
	took, err := parallel(ctx, len(clients)*window, envs, func(w int, e *channel.Envelope) error {
		_, err := clients[w%len(clients)].svc.PushTo(ctx, n.info.ID, e)
		return err
	})
	p := pushed{writers: len(clients), window: window, n: len(envs), took: took,
		nodeCPU: n.cpu() - cpu0, selfCPU: selfCPU() - self0}
	if err != nil {
		return p, err
	}
	sigs1, err := n.sigStats(ctx)
	p.sigs = peersync.SignatureStats{Checks: sigs1.Checks - sigs0.Checks, Batched: sigs1.Batched - sigs0.Batched,
		Batches: sigs1.Batches - sigs0.Batches, Largest: sigs1.Largest}
	return p, err
}

// sigStats is the node's signature-check counters (see the sigs command).
func (c *childNode) sigStats(ctx context.Context) (peersync.SignatureStats, error) {
	var st peersync.SignatureStats
	s, err := c.ask(ctx, "sigs")
	if err != nil {
		return st, err
	}
	_, err = fmt.Sscan(s, &st.Checks, &st.Batched, &st.Batches, &st.Largest)
	return st, err
}

// report adds the phase's rate, its ratio to verify, and the CPU per
// message of the node and of the writers.
func (p pushed) report(r *Result, phase string, verify float64) {
	r.add(fmt.Sprintf("%s, %d writers x %d in flight over loopback", phase, p.writers, p.window), p.rate(), "msg/s")
	r.add(phase+" / verify", p.rate()/verify, "x")
	nodeCost(r, phase, p.nodeCPU, p.took, p.n, verify)
	r.add("writers' CPU per message, "+phase, float64(p.selfCPU.Nanoseconds())/float64(p.n)/1000, "µs")
	if st := p.sigs; st.Checks > 0 {
		r.add("signatures checked in batches, "+phase, 100*float64(st.Batched)/float64(st.Checks), "%")
		if st.Batches > 0 {
			r.add("mean batch, "+phase, float64(st.Batched)/float64(st.Batches), "signatures")
		}
	}
}

// nodeCost reports the node process's CPU per message during a phase, its
// share of the cores, and the rate it could reach with every core to
// itself at that cost (its ceiling), against the verify baseline.
func nodeCost(r *Result, phase string, cpu, wall time.Duration, n int, verify float64) {
	if n == 0 || cpu <= 0 {
		return
	}
	per := cpu / time.Duration(n)
	ceiling := float64(runtime.NumCPU()) / per.Seconds()
	r.add("node CPU per message, "+phase, float64(per.Nanoseconds())/1000, "µs")
	r.add("node process busy, "+phase, cpu.Seconds()/wall.Seconds()/float64(runtime.NumCPU())*100, "% of the cores")
	r.add("node ceiling at that cost, "+phase, ceiling, "msg/s")
	r.add("node ceiling / verify, "+phase, ceiling/verify, "x")
}

// sealIngest seals n messages of body bytes round-robin into
// ingestChannels channels, returning them and the channels.
func sealIngest(n, body int) ([]*channel.Envelope, []channel.ID, error) {
	ws := make([]*writer, ingestChannels)
	chs := make([]channel.ID, ingestChannels)
	for i := range ws {
		var err error
		if ws[i], err = newWriter(); err != nil {
			return nil, nil, err
		}
		chs[i] = ws[i].key.ID()
	}
	envs := make([]*channel.Envelope, n)
	now := time.Now()
	// On every core: sealing is the setup, not what is measured.
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for k := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < n && errs[k] == nil; i += len(errs) {
				envs[i], errs[k] = ws[i%len(ws)].seal(body, now)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return envs, chs, nil
}

// parallel runs fn over envs from w workers and returns the wall time.
func parallel(ctx context.Context, w int, envs []*channel.Envelope, fn func(int, *channel.Envelope) error) (time.Duration, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := time.Now()
	for i := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				j := next.Add(1) - 1
				if j >= int64(len(envs)) {
					return
				}
				if err := fn(i, envs[j]); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return time.Since(start), first
}

// verifyRates measures verify/s of an envelope-sized message on every
// core, the floor any relay pays per message, for each function given.
// The functions take turns in short rounds on every core and each is
// timed only while it runs, so a change of load on a shared machine
// falls on all of them alike.
func verifyRates(e *channel.Envelope, d time.Duration, verifiers ...func(pub ed25519.PublicKey, msg, sig []byte) bool) []float64 {
	raw, _ := e.MarshalBinary()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig := ed25519.Sign(priv, raw)
	const round = 16
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	count := make([]int64, len(verifiers))
	busy := make([]time.Duration, len(verifiers))
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := make([]int64, len(verifiers))
			t := make([]time.Duration, len(verifiers))
			for time.Now().Before(deadline) {
				for i, verify := range verifiers {
					start := time.Now()
					for range round {
						if !verify(pub, raw, sig) {
							panic("verify failed on a good signature")
						}
					}
					t[i] += time.Since(start)
					n[i] += round
				}
			}
			mu.Lock()
			for i := range verifiers {
				count[i] += n[i]
				busy[i] += t[i]
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	rates := make([]float64, len(verifiers))
	for i := range verifiers {
		// busy is summed over the workers: per core, busy/workers.
		rates[i] = float64(count[i]) / (busy[i].Seconds() / float64(workers))
	}
	return rates
}
