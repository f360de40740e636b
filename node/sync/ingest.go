package sync

import gosync "sync"

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
	mu       gosync.Mutex
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

// ingestAsync runs fn in its own goroutine once the session's ingest gate
// has room for size bytes. Waiting blocks the reader, which is the
// back-pressure on a peer that sends faster than this node can validate
// and store.
func (ss *session) ingestAsync(size int, fn func()) {
	if !ss.ingest.acquire(size, ss.done) {
		return
	}
	ss.svc.wg.Add(1)
	go func() {
		defer ss.svc.wg.Done()
		defer ss.ingest.release(size)
		fn()
	}()
}
