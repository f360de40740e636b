package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// clientGOGC is the load generator's GOGC during the relay scenario.
const clientGOGC = 400

// relayLoad is the traffic of the relay scenario, the same for redPanda
// and for the gossipsub baseline: pairs of clients, one on S1 and one on
// S2, each pair a channel; message k goes from pair k%P, in alternating
// directions, at a fixed total rate.
type relayLoad struct {
	pairs []*writer
	envs  []*channel.Envelope
	raw   [][]byte
	from  []int // side of the sender: 0 = S1, 1 = S2
	pair  []int
	every time.Duration
	bytes int // sum of envelope sizes
}

func newRelayLoad(p Params) (*relayLoad, error) {
	l := &relayLoad{every: time.Second / time.Duration(p.Rate)}
	for range p.Pairs {
		w, err := newWriter()
		if err != nil {
			return nil, err
		}
		l.pairs = append(l.pairs, w)
	}
	total := int(int64(p.Rate) * int64(p.RelayFor) / int64(time.Second))
	now := time.Now()
	for k := range total {
		i := k % p.Pairs
		e, err := l.pairs[i].seal(p.Body, now)
		if err != nil {
			return nil, err
		}
		raw, _ := e.MarshalBinary()
		l.envs, l.raw = append(l.envs, e), append(l.raw, raw)
		l.pair, l.from = append(l.pair, i), append(l.from, (k/p.Pairs)%2)
		l.bytes += e.Size()
	}
	return l, nil
}

// latencies records post-to-delivery times against the scheduled send
// time (so a stalled sender cannot hide its own delay).
type latencies struct {
	mu    sync.Mutex
	sent  map[[32]byte]sentMsg
	got   []time.Duration
	at    map[[32]byte]time.Time // when each message was delivered
	done  chan struct{}
	want  int
	start time.Time // set by schedule
}

type sentMsg struct {
	at time.Time
	to int // receiving client index: pair*2 + side
}

func newLatencies(want int) *latencies {
	return &latencies{sent: map[[32]byte]sentMsg{}, at: map[[32]byte]time.Time{}, done: make(chan struct{}), want: want}
}

func (l *latencies) send(id [32]byte, at time.Time, to int) {
	l.mu.Lock()
	l.sent[id] = sentMsg{at: at, to: to}
	l.mu.Unlock()
}

func (l *latencies) deliver(id [32]byte, to int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sent[id]
	if !ok || s.to != to {
		return
	}
	delete(l.sent, id)
	l.got = append(l.got, now.Sub(s.at))
	l.at[id] = now
	if len(l.got) == l.want {
		close(l.done)
	}
}

// wait waits for every message, or drain after the last was sent.
func (l *latencies) wait(ctx context.Context, drain time.Duration) {
	select {
	case <-l.done:
	case <-time.After(drain):
	case <-ctx.Done():
	}
}

// scheduled is message k's scheduled send time.
func (l *latencies) scheduled(k int, every time.Duration) time.Time {
	return l.start.Add(time.Duration(k) * every)
}

func median(d []time.Duration) time.Duration { return percentile(d, 0.5) }

// percentile sorts d and returns its q-quantile (0 for none).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*q))]
}

func (l *latencies) stats() (median, p99, maxd time.Duration, n int) {
	l.mu.Lock()
	d := slices.Clone(l.got)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)], d[len(d)-1], len(d)
}

// schedule calls send(k) at start + k*every, each in its own goroutine,
// so a slow post does not delay the next.
func schedule(ctx context.Context, l *latencies, n int, every time.Duration, send func(k int, at time.Time)) {
	start := time.Now()
	l.start = start
	var wg sync.WaitGroup
	for k := range n {
		at := start.Add(time.Duration(k) * every)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); send(k, at) }()
	}
	wg.Wait()
}

// runRelay runs the load over two redPanda nodes, then over gossipsub on
// the same topology, and reports both and their ratios.
func runRelay(ctx context.Context, p Params) (Result, error) {
	var r Result
	load, err := newRelayLoad(p)
	if err != nil {
		return r, err
	}
	r.add("messages", float64(len(load.envs)), "msg")
	r.add("rate", float64(p.Rate), "msg/s")
	r.add("client pairs", float64(p.Pairs), "pairs")
	// This process is the load generator: 2x pairs clients, each with a
	// libp2p host, a store and its applier, allocating ~100 KB per relayed
	// message between them. Its collector runs less often (GOGC 400) so
	// that its mark phases, which take one of two cores, stall the posts
	// and deliveries it times less often. The nodes run in their own
	// processes with the runtime's defaults, as the daemon does; the
	// gossipsub baseline, all in this process, gets the same setting.
	defer debug.SetGCPercent(debug.SetGCPercent(clientGOGC))
	r.add("load generator GOGC", clientGOGC, "")
	ours, err := relayRedPanda(ctx, p, load)
	if err != nil {
		return r, fmt.Errorf("redpanda: %w", err)
	}
	gs, err := relayGossipsub(ctx, p, load)
	if err != nil {
		return r, fmt.Errorf("gossipsub: %w", err)
	}
	for _, x := range []struct {
		name string
		o    relayOutcome
	}{{"redpanda", ours}, {"gossipsub", gs}} {
		r.add(x.name+" median", ms(x.o.median), "ms")
		r.add(x.name+" p99", ms(x.o.p99), "ms")
		r.add(x.name+" max", ms(x.o.max), "ms")
		r.add(x.name+" delivered", float64(x.o.delivered), "msg")
		r.add(x.name+" bytes per delivery", x.o.bytesPerDelivery, "B")
	}
	r.add("redpanda median post -> first node stored", ms(ours.firstHop), "ms")
	r.add("redpanda median first -> second node stored", ms(ours.secondHop), "ms")
	r.add("redpanda p99 post -> first node stored", ms(ours.firstHop99), "ms")
	r.add("redpanda p99 first -> second node stored", ms(ours.secondHop99), "ms")
	r.add("redpanda median second node -> client stored", ms(ours.lastHop), "ms")
	r.add("redpanda p99 second node -> client stored", ms(ours.lastHop99), "ms")
	r.add("redpanda S1 process busy while sending", ours.nodeBusy[0]*100, "% of the cores")
	r.add("redpanda S2 process busy while sending", ours.nodeBusy[1]*100, "% of the cores")
	r.add("envelope size", float64(load.bytes/len(load.envs)), "B")
	r.add("p99 redpanda / gossipsub", ratio(ms(ours.p99), ms(gs.p99)), "x")
	r.add("median redpanda / gossipsub", ratio(ms(ours.median), ms(gs.median)), "x")
	r.add("bytes/delivery redpanda / gossipsub", ratio(ours.bytesPerDelivery, gs.bytesPerDelivery), "x")
	r.target("redpanda p99 < 50 ms at 1000 msg/s", ours.p99 < 50*time.Millisecond && p.Rate >= 1000 && ours.delivered == len(load.envs))
	r.Limit = "the cores: two node processes (their share is above) and this process's clients, which verify and store every message, share them, and wake each other through the kernel; the tail is longest where this process takes part (the first and last hop). Each hop also waits for a group commit (one fdatasync, S1 and S2 share one disk). gossipsub stores nothing and acks nothing"
	return r, nil
}

type relayOutcome struct {
	median, p99, max time.Duration
	// firstHop: scheduled post to stored by the sender's node; secondHop:
	// from there to stored by the other node; lastHop: from there to
	// stored by the receiving client (in this process). redpanda only.
	firstHop, secondHop     time.Duration
	firstHop99, secondHop99 time.Duration
	lastHop, lastHop99      time.Duration
	delivered               int
	bytesPerDelivery        float64
	nodeBusy                [2]float64 // share of the cores each node process used while sending
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func relayRedPanda(ctx context.Context, p Params, load *relayLoad) (relayOutcome, error) {
	var o relayOutcome
	dir, err := os.MkdirTemp("", "rpbench-relay-")
	if err != nil {
		return o, err
	}
	defer os.RemoveAll(dir)
	cdirs, err := clientTempDir("rpbench-relay-clients-")
	if err != nil {
		return o, err
	}
	defer os.RemoveAll(cdirs)
	chs := make([]channel.ID, len(load.pairs))
	for i, w := range load.pairs {
		chs[i] = w.key.ID()
	}
	s1, err := startChild(ctx, filepath.Join(dir, "s1"), childOpts{name: "s1", capacity: 2 * p.Pairs})
	if err != nil {
		return o, fmt.Errorf("node process: %w", err)
	}
	defer s1.stop()
	s2, err := startChild(ctx, filepath.Join(dir, "s2"), childOpts{name: "s2", capacity: 2 * p.Pairs, peers: []string{s1.addr}})
	if err != nil {
		return o, fmt.Errorf("node process: %w", err)
	}
	defer s2.stop()
	// Served by the operator on both: open to the other node and to the
	// clients, which also register.
	nodes := [2]*childNode{s1, s2}
	for _, n := range nodes {
		if err := n.serve(ctx, chs...); err != nil {
			return o, err
		}
	}
	if err := until(ctx, func() bool {
		hellos, err := s1.askUint(ctx, "hello %s", s2.info.ID)
		return err == nil && hellos > 0
	}); err != nil {
		return o, fmt.Errorf("S1-S2 session: %w", err)
	}
	// The clients share one store, as the ingest writers do: each still
	// verifies and stores every message it receives (the pairs' channels
	// differ, so no client sees another's copy), but 100 stores meant 100
	// group committers and appliers in this process, whose CPU on the two
	// cores the nodes share made the first and last hop's tail (p99 of the
	// last hop 50-100 ms with own stores, 18-30 ms shared).
	shared, err := store.Open(filepath.Join(cdirs, "clients.db"), store.Options{Logger: p.Logger})
	if err != nil {
		return o, err
	}
	defer shared.Close()
	clients := make([]*lite, 2*len(load.pairs))
	for i := range clients {
		c, err := newLite(cdirs, shared, p.Logger)
		if err != nil {
			return o, err
		}
		defer c.close()
		clients[i] = c
	}
	for i, c := range clients {
		if _, err := c.join(ctx, nodes[i%2].info, chs[i/2]); err != nil {
			return o, fmt.Errorf("client %d: %w", i, err)
		}
	}
	lat := newLatencies(len(load.envs))
	for i, c := range clients {
		go func() {
			for st := range c.sub {
				lat.deliver(st.ID, i)
			}
		}()
	}
	// Where the time goes: when each node stored each message.
	var hopMu sync.Mutex
	stored := [2]map[channel.MessageID]time.Time{{}, {}}
	for i, n := range nodes {
		n.onStore = func(id channel.MessageID, at time.Time) {
			hopMu.Lock()
			stored[i][id] = at
			hopMu.Unlock()
		}
		if _, err := n.ask(ctx, "watch"); err != nil {
			return o, err
		}
	}
	before, err := nodeBytes(ctx, s1, s2)
	if err != nil {
		return o, err
	}
	cpu0 := [2]time.Duration{s1.cpu(), s2.cpu()}
	sendStart := time.Now()
	var failed atomic.Int64
	schedule(ctx, lat, len(load.envs), load.every, func(k int, at time.Time) {
		from := load.pair[k]*2 + load.from[k]
		to := load.pair[k]*2 + 1 - load.from[k]
		lat.send(load.envs[k].ID(), at, to)
		if _, err := clients[from].svc.PushTo(ctx, nodes[load.from[k]].info.ID, load.envs[k]); err != nil {
			failed.Add(1)
		}
	})
	lat.wait(ctx, 10*time.Second)
	wall := time.Since(sendStart)
	for i, n := range nodes {
		o.nodeBusy[i] = (n.cpu() - cpu0[i]).Seconds() / wall.Seconds() / float64(runtime.NumCPU())
	}
	o.median, o.p99, o.max, o.delivered = lat.stats()
	after, err := nodeBytes(ctx, s1, s2)
	if err != nil {
		return o, err
	}
	if o.delivered > 0 {
		o.bytesPerDelivery = float64(after-before) / float64(o.delivered)
	}
	// The last "S" lines are flushed every 100 ms.
	time.Sleep(300 * time.Millisecond)
	hopMu.Lock()
	var first, second, last []time.Duration
	lat.mu.Lock()
	for k, e := range load.envs {
		id := e.ID()
		a, b, c := stored[load.from[k]][id], stored[1-load.from[k]][id], lat.at[id]
		if !a.IsZero() && !b.IsZero() && !c.IsZero() {
			at := lat.scheduled(k, load.every)
			first, second, last = append(first, a.Sub(at)), append(second, b.Sub(a)), append(last, c.Sub(b))
		}
	}
	lat.mu.Unlock()
	hopMu.Unlock()
	o.firstHop, o.secondHop, o.lastHop = median(first), median(second), median(last)
	o.firstHop99, o.secondHop99, o.lastHop99 = percentile(first, 0.99), percentile(second, 0.99), percentile(last, 0.99)
	if n := failed.Load(); n > 0 {
		return o, fmt.Errorf("%d pushes failed", n)
	}
	return o, nil
}

// nodeBytes is the sync bytes on every link of the topology, each link
// counted once: S1's sessions (clients and S2) and S2's with its clients.
func nodeBytes(ctx context.Context, s1, s2 *childNode) (uint64, error) {
	a, err := s1.askUint(ctx, "bytes")
	if err != nil {
		return 0, err
	}
	b, err := s2.askUint(ctx, "bytes %s", s1.info.ID)
	return a + b, err
}

// until polls cond until it holds or ctx ends.
func until(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func rawID(b []byte) [32]byte { return sha256.Sum256(b) }
