package sync

import (
	"crypto/rand"
	"errors"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// sigMix is n envelopes over two channels, every third with a bit of its
// signature flipped, and what channel.Validate says of each.
func sigMix(t *testing.T, n int) ([]*channel.Envelope, []error) {
	t.Helper()
	ws := []*writer{newWriter(t), newWriter(t)}
	now := time.Now()
	envs := make([]*channel.Envelope, n)
	want := make([]error, n)
	for i := range envs {
		e := ws[i%2].seal(t, fmt.Sprint("m", i), now)
		if i%3 == 2 {
			bad := *e
			bad.Signature[i%channel.SignatureSize] ^= 1
			e = &bad
		}
		envs[i] = e
		want[i] = channel.Validate(e, now, channel.Policy{})
	}
	return envs, want
}

func sameResult(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return got != nil && errors.Is(got, channel.ErrBadSignature) && got.Error() == want.Error()
}

// TestSigChecksBatchQueued: checks that queue up while every runner is
// busy are done in batches by the next caller and the goroutine it hands
// over to, each with Validate's answer.
func TestSigChecksBatchQueued(t *testing.T) {
	envs, want := sigMix(t, 100)
	q := newSigChecks(channel.NewBatchVerifier(rand.Reader, 0))
	q.maxRun = 1
	q.mu.Lock()
	q.running = 1 // a runner is busy: every check below queues
	q.mu.Unlock()
	var wg gosync.WaitGroup
	got := make([]error, len(envs))
	for i := 1; i < len(envs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = q.check(envs[i])
		}()
	}
	eventually(t, "99 checks queued", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.queue) == len(envs)-1
	})
	q.mu.Lock()
	q.running = 0 // the busy runner leaves; the next caller runs
	q.mu.Unlock()
	got[0] = q.check(envs[0])
	wg.Wait()
	for i := range envs {
		if !sameResult(got[i], want[i]) {
			t.Fatalf("envelope %d: check %v, Validate %v", i, got[i], want[i])
		}
	}
	if b, n, l := q.batches.Load(), q.batched.Load(), q.largest.Load(); b < 3 || n < 99 || l != maxSigBatch {
		t.Fatalf("%d batches of %d checks, largest %d: want the 99 queued in batches of up to %d", b, n, l, maxSigBatch)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running != 0 || len(q.queue) != 0 {
		t.Fatalf("after: %d running, %d queued", q.running, len(q.queue))
	}
}

// TestSigChecksConcurrent: many goroutines checking at once, over and
// over with pooled checks, each get their own envelope's answer.
func TestSigChecksConcurrent(t *testing.T) {
	envs, want := sigMix(t, 60)
	q := newSigChecks(channel.NewBatchVerifier(rand.Reader, 0))
	q.maxRun = 2
	var wg gosync.WaitGroup
	errc := make(chan error, 1)
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				i := (g*7 + k) % len(envs)
				if got := q.check(envs[i]); !sameResult(got, want[i]) {
					select {
					case errc <- fmt.Errorf("goroutine %d, envelope %d: check %v, Validate %v", g, i, got, want[i]):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	t.Logf("%d batches of %d checks in all, largest %d", q.batches.Load(), q.batched.Load(), q.largest.Load())
}
