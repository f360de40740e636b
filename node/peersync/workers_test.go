package peersync

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

func idleWorkers(p *workerPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// TestWorkerPool: jobs one after another reuse one goroutine; jobs that
// all block until each has started (as ingests waiting on one group
// commit do) each get their own, so run never waits for a busy worker;
// idle workers end after the idle time or at close; no job is lost when
// workers time out while jobs arrive.
func TestWorkerPool(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, p *workerPool, wg *sync.WaitGroup)
	}{
		{"sequential jobs reuse one worker", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			for i := range 100 {
				done := make(chan struct{})
				if !p.run(func() { close(done) }) {
					t.Fatal("run refused")
				}
				<-done
				testkit.Eventually(t, fmt.Sprintf("worker idle after job %d", i), func() bool { return idleWorkers(p) == 1 })
			}
			if n := p.started.Load(); n != 1 {
				t.Fatalf("%d workers started for 100 sequential jobs, want 1", n)
			}
		}},
		{"blocked jobs each get a worker", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			const n = 50
			var started sync.WaitGroup
			started.Add(n)
			release := make(chan struct{})
			var ran atomic.Int64
			for range n {
				p.run(func() {
					started.Done()
					<-release // a commit that needs every job waiting
					ran.Add(1)
				})
			}
			started.Wait()
			close(release)
			testkit.Eventually(t, "all ran", func() bool { return ran.Load() == n })
			if got := p.started.Load(); got != n {
				t.Fatalf("%d workers for %d jobs blocked at once, want %d", got, n, n)
			}
		}},
		{"idle workers past the cap end at once", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			p.maxIdle = 3
			const n = 10
			var started sync.WaitGroup
			started.Add(n)
			release := make(chan struct{})
			for range n {
				p.run(func() { started.Done(); <-release })
			}
			started.Wait()
			close(release)
			testkit.Eventually(t, "3 workers left, all idle", func() bool { return p.alive.Load() == 3 && idleWorkers(p) == 3 })
		}},
		{"close ends idle workers and refuses jobs", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			for range 3 {
				p.run(func() {})
			}
			testkit.Eventually(t, "idle", func() bool { return idleWorkers(p) >= 1 })
			p.close()
			wg.Wait()
			if p.run(func() { t.Error("job ran after close") }) {
				t.Fatal("run accepted a job after close")
			}
		}},
		{"idle workers end", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			p.idle = time.Millisecond
			for range 5 {
				p.run(func() {})
			}
			wg.Wait() // returns only once every worker ended by itself
			if n := idleWorkers(p); n != 0 {
				t.Fatalf("%d workers still listed idle after ending", n)
			}
		}},
		{"no job lost to idle timeouts", func(t *testing.T, p *workerPool, wg *sync.WaitGroup) {
			p.idle = time.Microsecond // time out all the time, racing run
			const senders, each = 4, 500
			var ran atomic.Int64
			var sent sync.WaitGroup
			for range senders {
				sent.Add(1)
				go func() {
					defer sent.Done()
					for range each {
						p.run(func() { ran.Add(1) })
					}
				}()
			}
			sent.Wait()
			testkit.Eventually(t, "every job ran", func() bool { return ran.Load() == senders*each })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			p := newWorkerPool(&wg, time.Minute)
			tc.run(t, p, &wg)
			p.close()
			wg.Wait()
		})
	}
}

// TestIngestGateOfOne: with room for one message at a time, the reader
// waits at the gate while the one ingesting message waits for its
// commit, for every message of a burst; all are stored and acknowledged
// (no deadlock between the gate, the workers and the commit).
func TestIngestGateOfOne(t *testing.T) {
	w := newWriter(t)
	b := newNode(t, nil, func(c *Config) { c.IngestConcurrency = 1 })
	x := newNode(t, nil)
	b.svc.Want(w.id())
	connect(t, x, b)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(b, x) })
	const n = 64
	errs := make(chan error, n)
	for i := range n {
		e := w.seal(t, fmt.Sprint("burst ", i), time.Now())
		go func() {
			_, err := x.svc.PushTo(context.Background(), b.h.ID(), e)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	if got := count(t, b, w.id()); got != n {
		t.Fatalf("%d stored, want %d", got, n)
	}
}
