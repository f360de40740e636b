package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// The outbox: what the client posts on its own behalf (master-channel
// state, node-channel serve lists, receipts, adverts, forwarded friend
// paths, lookup answers) is sealed and stored durably at once, in the
// caller's goroutine, and its ID is kept in the outbox until a super node
// acknowledges it. A background sender pushes the outbox while the client
// is online; Close (or Flush) waits, boundedly, for what this process
// queued; what is still undelivered stays in the outbox and goes out the
// next time the client is online. Nothing is lost when a command exits
// right after a change.
const (
	bucketOutbox = "outbox" // message ID -> channel ID (32) | queued at (8, Unix ms)
	// DefaultFlushTimeout bounds how long Close waits for what this
	// process queued to reach a super node.
	DefaultFlushTimeout = 10 * time.Second
	// maxOutbox bounds the outbox; past it the oldest entries are
	// dropped (the messages stay stored locally, and reconciliation
	// still offers them to the nodes).
	maxOutbox   = 4096
	outboxTick  = 2 * time.Second
	outboxPushN = 8 // entries pushed at once
	// An entry no node took is pushed again by the background sender
	// after a pause that doubles up to outboxMaxWait, so one in a channel
	// no node serves yet is not pushed every tick for a week.
	outboxMaxWait = 5 * time.Minute
)

// outbox is the client's in-memory view of its outbox.
type outbox struct {
	flushMu sync.Mutex // one flush at a time
	kick    chan struct{}

	mu    sync.Mutex
	here  map[channel.MessageID]bool // queued by this process and not yet reported
	retry map[channel.MessageID]retry
}

// retry is when an entry no node took is pushed again.
type retry struct {
	at   time.Time
	wait time.Duration
}

func newOutbox() *outbox {
	return &outbox{kick: make(chan struct{}, 1), here: map[channel.MessageID]bool{}, retry: map[channel.MessageID]retry{}}
}

// postLater seals body for cs, stores it durably and queues it for the
// super nodes. It returns once the message is stored; delivery happens in
// the background (and before Close, boundedly). It does not process the
// message itself, so it may be called while a message is being processed.
func (c *Client) postLater(cs *chanState, kind channel.ContentKind, body []byte) (channel.MessageID, error) {
	if c.isClosed() {
		return channel.MessageID{}, ErrClosed
	}
	e, err := cs.key.Seal(c.self, kind, body, c.nextTimestamp(), rand.Reader)
	if err != nil {
		return channel.MessageID{}, fmt.Errorf("seal: %w", err)
	}
	// Not the caller's context: the message must be stored even when the
	// caller is on its way out.
	id, err := c.svc.Publish(context.Background(), e)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return id, fmt.Errorf("store locally: %w", err)
	}
	// Noted as this process's before it is in the outbox: the sender
	// may take it from there at once, and forgets it here when it does.
	c.out.mu.Lock()
	c.out.here[id] = true
	c.out.mu.Unlock()
	v := append(append(make([]byte, 0, 40), e.Channel[:]...), binary.BigEndian.AppendUint64(nil, uint64(c.cfg.Now().UnixMilli()))...)
	if err := c.db.Meta(bucketOutbox).Put(id[:], v); err != nil {
		c.forgetQueued(id)
		return id, fmt.Errorf("outbox: %w", err)
	}
	c.kickOutbox()
	return id, nil
}

func (c *Client) kickOutbox() {
	select {
	case c.out.kick <- struct{}{}:
	default:
	}
}

// runOutbox pushes the outbox whenever the client has a sync session with
// a node it uses, until the client closes.
func (c *Client) runOutbox() {
	defer c.wg.Done()
	t := time.NewTicker(outboxTick)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.out.kick:
		case <-t.C:
		}
		// Online: push to the nodes with a session up; the ones being
		// redialled get the rest by reconciliation or the next round.
		up := c.sessionsWith(c.activeNodes())
		if len(up) == 0 {
			continue
		}
		if _, err := c.flushOutbox(c.ctx, up, true); err != nil && c.ctx.Err() == nil {
			c.log.Debug("outbox: not all delivered yet", "err", err)
		}
		c.snapshotIfDue()
	}
}

type outboxEntry struct {
	id     channel.MessageID
	queued int64
}

// outboxEntries lists the outbox, oldest first.
func (c *Client) outboxEntries() ([]outboxEntry, error) {
	var out []outboxEntry
	err := c.db.Meta(bucketOutbox).ForEach(func(k, v []byte) error {
		if len(k) != len(channel.MessageID{}) || len(v) != 40 {
			return nil
		}
		out = append(out, outboxEntry{id: channel.MessageID(k), queued: int64(binary.BigEndian.Uint64(v[32:]))})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].queued < out[j].queued })
	return out, err
}

// permanent reports whether a node's refusal will not change on a retry.
func permanent(err error) bool {
	var rej *peersync.RejectError
	if !errors.As(err, &rej) {
		return false
	}
	switch rej.Reason {
	case wirepb.Reason_REASON_BAD_VERSION, wirepb.Reason_REASON_TOO_LARGE, wirepb.Reason_REASON_EXPIRED,
		wirepb.Reason_REASON_BAD_SIGNATURE, wirepb.Reason_REASON_MALFORMED:
		return true
	}
	return false
}

// flushOutbox pushes every outbox entry to nodes and drops the entries
// one of them acknowledged (or already held). With paced, entries that
// failed recently wait for their retry time. It returns how many entries
// remain and the last reason one was not delivered.
func (c *Client) flushOutbox(ctx context.Context, nodes []peer.ID, paced bool) (int, error) {
	c.out.flushMu.Lock()
	defer c.out.flushMu.Unlock()
	entries, err := c.outboxEntries()
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	if len(entries) == 0 {
		return 0, nil
	}
	m := c.db.Meta(bucketOutbox)
	for len(entries) > maxOutbox {
		_ = m.Delete(entries[0].id[:])
		c.forgetQueued(entries[0].id)
		entries = entries[1:]
	}
	if len(nodes) == 0 {
		return len(entries), ErrNoNodes
	}
	var (
		mu      sync.Mutex
		left    int
		lastErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, outboxPushN)
	)
	now := time.Now()
	for _, en := range entries {
		c.out.mu.Lock()
		r, waiting := c.out.retry[en.id]
		c.out.mu.Unlock()
		if paced && waiting && now.Before(r.at) {
			mu.Lock()
			left++
			mu.Unlock()
			continue
		}
		if ctx.Err() != nil {
			mu.Lock()
			left++
			mu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			done, err := c.pushEntry(ctx, en.id, nodes)
			if done {
				_ = m.Delete(en.id[:])
				c.forgetQueued(en.id)
				return
			}
			c.out.mu.Lock()
			w := min(max(2*c.out.retry[en.id].wait, outboxTick), outboxMaxWait)
			c.out.retry[en.id] = retry{at: time.Now().Add(w), wait: w}
			c.out.mu.Unlock()
			mu.Lock()
			left++
			lastErr = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if lastErr == nil && left > 0 {
		lastErr = ctx.Err()
	}
	return left, lastErr
}

// pushEntry pushes one stored message to nodes. done means the entry can
// go: a node holds it, it is gone from the local store (expired), or every
// node refused it for good (logged).
func (c *Client) pushEntry(ctx context.Context, id channel.MessageID, nodes []peer.ID) (done bool, err error) {
	e, err := c.db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	errs := make(chan error, len(nodes))
	for _, p := range nodes {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, DefaultPushTimeout)
			defer cancel()
			_, err := c.svc.PushTo(pctx, p, e)
			var rej *peersync.RejectError
			if errors.As(err, &rej) && rej.Reason == wirepb.Reason_REASON_DUPLICATE {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", p, err)
			}
			errs <- err
		}()
	}
	refused := 0
	for range nodes {
		switch perr := <-errs; {
		case perr == nil:
			done = true
		case permanent(perr):
			refused++
			err = perr
		default:
			err = perr
		}
	}
	if !done && refused == len(nodes) {
		c.log.Warn("outbox: message refused by every node; dropped", "id", id, "err", err)
		return true, nil
	}
	if done {
		return true, nil
	}
	return false, err
}

func (c *Client) forgetQueued(id channel.MessageID) {
	c.out.mu.Lock()
	delete(c.out.here, id)
	delete(c.out.retry, id)
	c.out.mu.Unlock()
}

// queuedHere is how many messages this process queued that no node has
// acknowledged and that were not reported yet.
func (c *Client) queuedHere() int {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return len(c.out.here)
}

// Pending is how many messages wait in the outbox (from this process or
// an earlier one) for a super node to acknowledge them.
func (c *Client) Pending() int {
	es, _ := c.outboxEntries()
	return len(es)
}

// Flush brings the client's nodes up to date before a one-shot command
// exits and delivers what this process queued in the outbox (state
// changes for the identity's other devices and its home node, receipts,
// ...): when no session with a node is up it registers (as Nodes.Update
// does), then it pushes, and returns how many of those messages are still
// undelivered, with the reason. Undelivered messages stay in the outbox
// and go out the next time the client is online; Close does not wait for
// them again. ctx bounds the wait.
func (c *Client) Flush(ctx context.Context) (int, error) {
	if c.isClosed() {
		return 0, ErrClosed
	}
	var err error
	if len(c.sessionsWith(c.activeNodes())) == 0 {
		// Offline (a one-shot command): register, so that the nodes
		// serve this device's channels, then push; pushing dials. Not
		// Connect, which would wait out ctx for an unreachable node.
		err = c.register(ctx)
	}
	// Rounds: what the client queues meanwhile (a background
	// registration's adverts, receipts) is delivered too.
	registered := false
	for round := 0; err == nil && c.queuedHere() > 0 && round < flushRounds; round++ {
		var left int
		left, err = c.flushOutbox(ctx, c.activeNodes(), false)
		if left == 0 && err == nil && c.queuedHere() > 0 {
			// Queued while this round pushed (receipts and adverts
			// follow deliveries), or still being stored: the next
			// round takes them, after a breath for the store.
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(flushBreath):
			}
		}
		var rej *peersync.RejectError
		if left > 0 && !registered && errors.As(err, &rej) && rej.Reason == wirepb.Reason_REASON_NOT_WANTED {
			// A node that does not serve the channel yet: registering
			// again lists this device's channels as they are now.
			registered = true
			err = c.register(ctx)
		}
	}
	c.out.mu.Lock()
	left := len(c.out.here)
	clear(c.out.here) // reported: Close does not wait for them again
	c.out.mu.Unlock()
	if left == 0 {
		if err != nil {
			return 0, fmt.Errorf("client.Flush: %w", err)
		}
		return 0, nil
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = ErrNotDelivered
	}
	return left, fmt.Errorf("client.Flush: %w", err)
}

// flushRounds bounds Flush's rounds: deliveries make receipts and adverts
// that are delivered in the next round; on a loaded machine that chain
// took four rounds to settle.
const flushRounds = 8

// flushBreath is how long Flush waits for a message being stored.
const flushBreath = 20 * time.Millisecond

// flushBeforeClose is Close's bounded wait for what this process queued.
func (c *Client) flushBeforeClose() {
	if c.queuedHere() == 0 || c.cfg.FlushTimeout < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.FlushTimeout)
	defer cancel()
	if n, err := c.Flush(ctx); n > 0 {
		c.log.Warn(fmt.Sprintf("%d change(s) not delivered to a super node before closing; kept, they go out the next time this client is online", n),
			"err", err)
	}
}
