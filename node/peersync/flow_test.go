package peersync

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// A peer that stops reading cannot grow the node's memory: announcements
// past the soft limit are dropped (and left to reconciliation) while the
// session stays up; a peer that keeps requesting bodies it does not read
// is cut off at the hard limit. Other peers are served throughout.
func TestSlowPeerIsBounded(t *testing.T) {
	const soft = 16 << 10
	w, other := newWriter(t), newWriter(t)
	b, c := newNode(t, nil, func(c *Config) { c.QueueBytes = soft }), newNode(t, nil)
	b.svc.Want(w.id(), other.id())
	c.svc.Want(other.id())
	connect(t, c, b)
	testkit.Eventually(t, "B-C up", func() bool { return sessionUp(b, c) })

	raw := newRawPeer(t)
	rp := dialRaw(t, raw, b)
	rp.send(helloFrame(w.id())) // wants everything, reads nothing more
	testkit.Eventually(t, "B knows the raw peer's wants", func() bool {
		ss := b.svc.sessionFor(raw.ID())
		return ss != nil && ss.peerWants(w.id())
	})
	ss := b.svc.sessionFor(raw.ID())

	// Enough announcements to fill the stream's flow-control window and
	// then the queue.
	const n = 4000
	envs := make([]*channel.Envelope, n)
	for i := range envs {
		envs[i] = w.seal(t, "flood", time.Now())
	}
	var wg sync.WaitGroup
	maxQueued := 0
	var mu sync.Mutex
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 64 {
				if _, err := b.svc.Publish(context.Background(), envs[i]); err != nil {
					t.Error(err)
					return
				}
				ss.mu.Lock()
				q := ss.qBytes
				ss.mu.Unlock()
				mu.Lock()
				maxQueued = max(maxQueued, q)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := b.svc.Stats(raw.ID())
	if st.Dropped == 0 {
		t.Fatal("no announcement was dropped for a peer that does not read")
	}
	if maxQueued > soft {
		t.Fatalf("queue reached %d bytes, soft limit %d", maxQueued, soft)
	}
	if b.svc.sessionFor(raw.ID()) != ss {
		t.Fatal("dropping announcements closed the session")
	}
	served, err := b.svc.Publish(context.Background(), other.seal(t, "meanwhile", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "C served meanwhile", func() bool { return has(t, c, served) })

	// Now ask for bodies without reading them: past the hard limit the
	// session is cut.
	id := envs[0].ID()
	ids := make([][]byte, 4096)
	for i := range ids {
		ids[i] = id[:]
	}
	rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{Ids: ids}}})
	testkit.Eventually(t, "the hoarding peer is cut off", func() bool { return b.svc.sessionFor(raw.ID()) == nil })
	last, err := b.svc.Publish(context.Background(), other.seal(t, "still serving", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "C still served", func() bool { return has(t, c, last) })
}
