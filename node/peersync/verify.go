package peersync

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// maxSigBatch is the most signatures checked in one batch. The batch
// equation's cost per signature falls steeply up to a dozen or so and
// little after 32 (go test ./node/channel -bench VerifySignatures), while
// every check in a batch waits for the whole of it.
const maxSigBatch = 32

// sigChecks gathers the write-signature checks of concurrent ingests into
// batches (channel.BatchVerifier), with no timer and no goroutine of its
// own: a check that arrives while fewer than GOMAXPROCS-1 checks run
// (at least one) is done at once by its caller (alone, if nothing else
// waits: a batch of one is a plain verification); one that arrives while
// they all run waits in the queue, and the next runner to come back takes
// everything queued, up to maxSigBatch, as one batch. So a quiet node
// verifies each message as it comes, and a busy one in batches as large
// as the load makes them. One core is left to the rest of ingest: with a
// runner on every core nothing else ran to queue a check, and batches
// never formed (rpbench ingest: nearly every check alone).
//
// A caller runs batches only until its own check is done; if work is left
// queued it hands its place to a new goroutine that drains the queue, so
// no ingest waits behind others' checks, and a queued check always has a
// runner.
type sigChecks struct {
	bv     *channel.BatchVerifier
	maxRun int

	mu      sync.Mutex
	queue   []*sigCheck
	running int

	checks  atomic.Int64 // signatures checked
	alone   atomic.Int64 // of them, checked alone for a suspect peer
	batches atomic.Int64 // batches of two or more checked
	batched atomic.Int64 // checks in those batches
	largest atomic.Int64 // the largest batch so far
}

// SignatureStats counts a service's write-signature checks since it
// started: how many, how many of them in batches of two or more (and in
// how many batches, the largest of how many), and how many were checked
// alone because their peer had sent a bad signature.
type SignatureStats struct {
	Checks, Batches, Batched, Largest, Alone int64
}

// SignatureStats reports how the service's signature checks were batched.
func (s *Service) SignatureStats() SignatureStats {
	q := s.sigs
	return SignatureStats{Checks: q.checks.Load(), Batches: q.batches.Load(), Batched: q.batched.Load(),
		Largest: q.largest.Load(), Alone: q.alone.Load()}
}

// suspectFor is how long a peer that sent a message with a bad write
// signature has its messages checked alone, and maxSuspects how many
// such peers are remembered at once.
const (
	suspectFor  = 10 * time.Minute
	maxSuspects = 4096
)

// suspects are the peers that sent a bad write signature lately. A batch
// holding a bad signature is checked again one signature at a time, so a
// peer sending them would take back the gain of every batch its messages
// joined; checked alone, they cost that peer's messages a single check
// each and leave everyone else's batches whole.
type suspects struct {
	mu    sync.Mutex
	until map[peer.ID]time.Time
}

func newSuspects() *suspects { return &suspects{until: map[peer.ID]time.Time{}} }

// mark makes p a suspect from now for suspectFor. A full table drops its
// expired entries, and if that frees nothing, all of them: bounded, and
// a flood of new peers only makes the old ones batch again.
func (s *suspects) mark(p peer.ID, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.until[p]; !ok && len(s.until) >= maxSuspects {
		for q, t := range s.until {
			if now.After(t) {
				delete(s.until, q)
			}
		}
		if len(s.until) >= maxSuspects {
			clear(s.until)
		}
	}
	s.until[p] = now.Add(suspectFor)
}

// is reports whether p is a suspect at now.
func (s *suspects) is(p peer.ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.until[p]
	if ok && now.After(t) {
		delete(s.until, p)
		return false
	}
	return ok
}

// sigCheck is one envelope's check; done gets a value when a runner other
// than its caller has set err.
type sigCheck struct {
	e    *channel.Envelope
	err  error
	done chan struct{}
}

var sigCheckPool = sync.Pool{New: func() any { return &sigCheck{done: make(chan struct{}, 1)} }}

func newSigChecks(bv *channel.BatchVerifier) *sigChecks {
	return &sigChecks{bv: bv, maxRun: max(1, runtime.GOMAXPROCS(0)-1)}
}

// check returns nil if e's write signature is valid, or the error
// channel.Validate returns for a bad one. With alone it is checked by
// itself, outside the batches (a suspect peer's message).
func (q *sigChecks) check(e *channel.Envelope, alone bool) error {
	if alone {
		var errs [1]error
		q.bv.VerifySignatures([]*channel.Envelope{e}, errs[:])
		q.checks.Add(1)
		q.alone.Add(1)
		return errs[0]
	}
	c := sigCheckPool.Get().(*sigCheck)
	c.e = e
	q.mu.Lock()
	q.queue = append(q.queue, c)
	if q.running < q.maxRun {
		q.running++
		q.mu.Unlock()
		q.run(c)
	} else {
		q.mu.Unlock()
		<-c.done
	}
	err := c.err
	c.e, c.err = nil, nil
	sigCheckPool.Put(c)
	return err
}

// run checks batches from the front of the queue until own is done (own
// nil: until the queue is empty), holding one of the maxRun places. Own
// may be in another runner's batch; run then takes that runner's signal
// off own.done before it returns, so a pooled check never carries a stale
// one.
func (q *sigChecks) run(own *sigCheck) {
	// On the stack: a lone check at a quiet node allocates nothing here.
	var batchBuf [maxSigBatch]*sigCheck
	var envsBuf [maxSigBatch]*channel.Envelope
	var errs [maxSigBatch]error
	batch, envs := batchBuf[:0], envsBuf[:0]
	ownDone := own == nil
	yielded := false
	for {
		q.mu.Lock()
		n := min(len(q.queue), maxSigBatch)
		if n == 0 {
			q.running--
			q.mu.Unlock()
			if !ownDone {
				<-own.done // another runner has own in its batch
			}
			return
		}
		if !ownDone {
			select {
			case <-own.done: // another runner checked own
				ownDone = true
			default:
			}
		}
		if ownDone && own != nil {
			// Work is left and this caller has its answer: a new
			// goroutine takes over this place.
			q.mu.Unlock()
			go q.run(nil)
			return
		}
		if n == 1 && !yielded {
			// Alone: let goroutines that are ready to run (ingests a
			// step before their check) queue theirs first, once.
			yielded = true
			q.mu.Unlock()
			runtime.Gosched()
			continue
		}
		yielded = false
		batch = append(batch[:0], q.queue[:n]...)
		rest := copy(q.queue, q.queue[n:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
		q.mu.Unlock()

		envs = envs[:0]
		for _, c := range batch {
			envs = append(envs, c.e)
		}
		q.bv.VerifySignatures(envs, errs[:n])
		q.checks.Add(int64(n))
		if n > 1 {
			q.batches.Add(1)
			q.batched.Add(int64(n))
			if int64(n) > q.largest.Load() {
				q.largest.Store(int64(n)) // a race between runners only understates it
			}
		}
		for i, c := range batch {
			c.err = errs[i]
			if c == own {
				ownDone = true
			} else {
				c.done <- struct{}{}
			}
		}
		clear(batch)
	}
}
