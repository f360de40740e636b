package peersync

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
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
	var wg sync.WaitGroup
	got := make([]error, len(envs))
	for i := 1; i < len(envs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = q.check(envs[i], false)
		}()
	}
	testkit.Eventually(t, "99 checks queued", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.queue) == len(envs)-1
	})
	q.mu.Lock()
	q.running = 0 // the busy runner leaves; the next caller runs
	q.mu.Unlock()
	got[0] = q.check(envs[0], false)
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
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				i := (g*7 + k) % len(envs)
				if got := q.check(envs[i], false); !sameResult(got, want[i]) {
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

// TestSuspects: a marked peer is a suspect until suspectFor has passed,
// and the table never holds more than maxSuspects.
func TestSuspects(t *testing.T) {
	s := newSuspects()
	now := time.Now()
	p := peer.ID("a")
	if s.is(p, now) {
		t.Fatal("a peer never marked is a suspect")
	}
	s.mark(p, now)
	if !s.is(p, now.Add(suspectFor-time.Second)) {
		t.Fatal("not a suspect within suspectFor")
	}
	if s.is(p, now.Add(suspectFor+time.Second)) {
		t.Fatal("still a suspect after suspectFor")
	}
	for i := range maxSuspects + 10 {
		s.mark(peer.ID(fmt.Sprint("p", i)), now)
		if n := len(s.until); n > maxSuspects {
			t.Fatalf("%d suspects held, bound %d", n, maxSuspects)
		}
	}
}

// TestBadSignaturePeerCheckedAlone: once a peer has pushed a message with
// a bad write signature (refused as such), its next messages are checked
// alone, outside the batches; another peer's are not.
func TestBadSignaturePeerCheckedAlone(t *testing.T) {
	w := newWriter(t)
	n := newNode(t, nil)
	n.svc.Want(w.id())
	bad := newNode(t, nil, func(c *Config) { c.Light = true })
	good := newNode(t, nil, func(c *Config) { c.Light = true })
	for _, c := range []*node{bad, good} {
		c.svc.Want(w.id())
		connect(t, c, n)
	}
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(n, bad) && sessionUp(n, good) })
	ctx := context.Background()
	push := func(from *node, body string, tamper bool) error {
		t.Helper()
		e := w.seal(t, body, time.Now())
		if tamper {
			f := *e
			f.Signature[9] ^= 1
			e = &f
		}
		_, err := from.svc.PushTo(ctx, n.h.ID(), e)
		return err
	}
	if err := push(good, "honest", false); err != nil {
		t.Fatal(err)
	}
	if st := n.svc.SignatureStats(); st.Alone != 0 {
		t.Fatalf("%d checks alone before any bad signature", st.Alone)
	}
	var rej *RejectError
	if err := push(bad, "forged", true); !errors.As(err, &rej) || rej.Reason != wirepb.Reason_REASON_BAD_SIGNATURE {
		t.Fatalf("bad signature: %v, want a Reject with REASON_BAD_SIGNATURE", err)
	}
	alone := n.svc.SignatureStats().Alone
	for i := range 3 {
		if err := push(bad, fmt.Sprint("later ", i), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.svc.SignatureStats().Alone - alone; got != 3 {
		t.Fatalf("%d of the suspect peer's 3 next messages checked alone", got)
	}
	if err := push(good, "honest again", false); err != nil {
		t.Fatal(err)
	}
	if got := n.svc.SignatureStats().Alone - alone; got != 3 {
		t.Fatalf("the honest peer's message was checked alone too (%d alone)", got)
	}
}
