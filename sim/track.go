package sim

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// post is one acknowledged message: published at its author's home
// (durable there) and owed to every other home of its channel.
type post struct {
	id     channel.MessageID
	ch     *Channel
	from   int // author's home
	phase  string
	acked  time.Time
	arrive map[int]time.Time // home -> first stored there
}

// tracker follows every acknowledged post to the homes of its channel,
// through each running node's subscription to what it stores.
type tracker struct {
	mu     sync.Mutex
	posts  map[channel.MessageID]*post
	order  []*post
	missed atomic.Int64 // arrivals a subscription dropped (known from the store later)
}

func newTracker() *tracker {
	return &tracker{posts: map[channel.MessageID]*post{}}
}

// add records an acknowledged post.
func (t *tracker) add(p *post) {
	p.arrive = map[int]time.Time{p.from: p.acked}
	t.mu.Lock()
	t.posts[p.id] = p
	t.order = append(t.order, p)
	t.mu.Unlock()
}

// watch subscribes to what home i's node stores and records arrivals;
// the returned function ends it.
func (t *tracker) watch(i int, n *node.Node) func() {
	// A small buffer: an arrival it drops is found in the store at the
	// end (counted in Report.SubscriptionMissed); 4096 cost 200 KiB a home.
	sub, stop := n.Sync.Subscribe(256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for st := range sub {
			now := time.Now()
			t.mu.Lock()
			if p := t.posts[st.ID]; p != nil {
				if _, ok := p.arrive[i]; !ok {
					p.arrive[i] = now
				}
			}
			t.mu.Unlock()
		}
	}()
	return func() {
		stop()
		<-done
	}
}

// snapshot returns the posts so far.
func (t *tracker) snapshot() []*post {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*post(nil), t.order...)
}

// arrival returns when p reached home h, if it did.
func (t *tracker) arrival(p *post, h int) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := p.arrive[h]
	return at, ok
}

// noteStored records an arrival found in a store rather than through a
// subscription (the subscription dropped it), at time at.
func (t *tracker) noteStored(p *post, h int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := p.arrive[h]; !ok {
		p.arrive[h] = at
		t.missed.Add(1)
	}
}
