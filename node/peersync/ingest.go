package peersync

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ingestGate bounds what one session has being validated and stored at
// once, by count and by envelope bytes. Its waiter is the session's
// reader alone, so a blocked acquire is the back-pressure on a peer that
// sends faster than this node stores.
//
// The bytes, not a small count, are the memory bound: a node-to-node hop
// keeps rate × commit time messages waiting for the group commit (~100
// at 1,000 msg/s and 100 ms commits), and a count of 64 made the reader
// stop there, which capped the hop at 64 per commit whatever the size.
type ingestGate struct {
	mu       sync.Mutex
	n, max   int
	bytes    int
	maxBytes int
	freed    chan struct{} // one pending wake-up for the waiting reader
}

func newIngestGate(max, maxBytes int) *ingestGate {
	return &ingestGate{max: max, maxBytes: maxBytes, freed: make(chan struct{}, 1)}
}

// acquire takes room for a message of size bytes, waiting until there is
// some or done closes (false). A message larger than the whole budget
// waits until it can go alone.
func (g *ingestGate) acquire(size int, done <-chan struct{}) bool {
	size = min(size, g.maxBytes)
	for {
		g.mu.Lock()
		if g.n < g.max && g.bytes+size <= g.maxBytes {
			g.n++
			g.bytes += size
			g.mu.Unlock()
			return true
		}
		g.mu.Unlock()
		select {
		case <-g.freed:
		case <-done:
			return false
		}
	}
}

// release returns the room acquire took for size bytes.
func (g *ingestGate) release(size int) {
	size = min(size, g.maxBytes)
	g.mu.Lock()
	g.n--
	g.bytes -= size
	g.mu.Unlock()
	select {
	case g.freed <- struct{}{}:
	default:
	}
}

// ingestAsync runs fn on one of the service's ingest workers once the
// session's ingest gate has room for size bytes. Waiting blocks the
// reader, which is the back-pressure on a peer that sends faster than
// this node can validate and store.
func (ss *session) ingestAsync(size int, fn func()) {
	if !ss.ingest.acquire(size, ss.done) {
		return
	}
	if !ss.svc.workers.run(func() {
		defer ss.ingest.release(size)
		fn()
	}) {
		ss.ingest.release(size) // the service is closing
	}
}

// workerIdle is how long an ingest worker waits for its next message
// before it ends, and maxIdleWorkers how many may wait at once: a burst
// of a thousand messages waiting on one commit leaves no thousand stacks
// behind it.
const (
	workerIdle     = 10 * time.Second
	maxIdleWorkers = 256
)

// workerPool runs ingest jobs on long-lived goroutines. A goroutine per
// message started with a small stack that the signature check then grew
// and copied, every time (~16 µs of ~240 µs CPU per message); a worker
// keeps its stack from one message to the next.
//
// The pool never makes a caller wait: with no idle worker it starts one.
// A worker blocks on the store's group commit, which needs many messages
// waiting at once to batch them, so a fixed small pool would cap a hop at
// its size per commit; the sessions' ingest gates, not the pool, bound
// the work (and so the workers) and are the back-pressure. Because run
// never blocks, a reader waiting at its gate can never wait on a worker
// that waits on that reader.
type workerPool struct {
	wg      *sync.WaitGroup
	idle    time.Duration
	maxIdle int

	mu      sync.Mutex
	closed  bool
	waiting []*worker // idle, most recently used last: its stack is warm

	started atomic.Int64 // workers started, ever
	alive   atomic.Int64 // workers not ended yet
}

// worker is one goroutine's inbox: it holds at most the one job given to
// the worker after it was taken off the idle list.
type worker struct{ jobs chan func() }

func newWorkerPool(wg *sync.WaitGroup, idle time.Duration) *workerPool {
	return &workerPool{wg: wg, idle: idle, maxIdle: maxIdleWorkers}
}

// run hands fn to an idle worker or starts one; false once the pool is
// closed (fn does not run).
func (p *workerPool) run(fn func()) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if n := len(p.waiting); n > 0 {
		w := p.waiting[n-1]
		p.waiting[n-1] = nil
		p.waiting = p.waiting[:n-1]
		p.mu.Unlock()
		w.jobs <- fn // never blocks: an idle worker's inbox is empty
		return true
	}
	// Added under the lock that close takes first, so no Add follows the
	// service's Wait.
	p.wg.Add(1)
	p.mu.Unlock()
	p.started.Add(1)
	p.alive.Add(1)
	go p.work(&worker{jobs: make(chan func(), 1)}, fn)
	return true
}

// workerStackFloor is stack a worker keeps in use below its jobs. The
// garbage collector halves a goroutine's stack when less than a quarter
// of it is in use, which is the case for a worker waiting (for its next
// job or a group commit) between two signature checks: each check then
// grew and copied the stack again. A floor of a quarter of the stack a
// check needs (16-32 KiB) keeps it.
const workerStackFloor = 8 << 10

// work runs the worker's loop above the stack floor.
func (p *workerPool) work(w *worker, fn func()) {
	defer p.wg.Done()
	defer p.alive.Add(-1)
	var floor [workerStackFloor]byte
	p.loop(w, fn, &floor)
}

// loop runs fn and then whatever the pool hands it, until it has been
// idle for p.idle or the pool closes (a nil job). floor is only held.
//
//go:noinline
func (p *workerPool) loop(w *worker, fn func(), floor *[workerStackFloor]byte) {
	floor[0] = 1 // used, so the caller's frame keeps it
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for fn != nil {
		fn()
		fn = nil // let the job's closure go while idle
		p.mu.Lock()
		if p.closed || len(p.waiting) >= p.maxIdle {
			p.mu.Unlock()
			return
		}
		p.waiting = append(p.waiting, w)
		p.mu.Unlock()
		t.Reset(p.idle)
		select {
		case fn = <-w.jobs:
			continue
		case <-t.C:
		}
		p.mu.Lock()
		if i := slices.Index(p.waiting, w); i >= 0 {
			p.waiting = slices.Delete(p.waiting, i, i+1)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// run or close took this worker off the list as the timer
		// fired: its job (nil from close) is on its way.
		fn = <-w.jobs
	}
}

// close ends the idle workers; busy ones end after their job. Jobs given
// to run afterwards do not run.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.waiting
	p.waiting = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.jobs <- nil
	}
}
