package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Message is a text message as the user sees it: decrypted, author
// verified (the envelope's write signature and the author's own signature
// both checked by channel.Key.Open).
type Message struct {
	ID          string    // message ID, hex
	Channel     string    // local channel name
	ChannelID   string    // channel ID, hex
	Author      string    // author identity ("rpi…")
	Mine        bool      // written by this client's identity
	Text        string    //
	Timestamp   time.Time // the author's clock
	DeliveredTo []string  // identities that posted a receipt for it (History only)
}

// historyRecord is what the history bucket keeps per message.
type historyRecord struct {
	Author string `json:"a"`
	Text   string `json:"t"`
}

// How incoming messages are gathered into sorted batches.
const (
	coalesceQuiet = 30 * time.Millisecond
	coalesceMax   = 500 * time.Millisecond
	maxBatch      = 1024
)

// maxReceiptIDs bounds one receipt's body: it lists message IDs.
const maxReceiptIDs = 256

// SendResult says where a sent message is durable.
type SendResult struct {
	ID      string   // message ID, hex
	AckedBy []string // peer IDs of the super nodes that acknowledged it as durable
	Failed  []string // one line per node that did not, naming it and why
}

// Send posts text to the named channel: it seals it with the channel key
// and this client's identity, stores it locally, pushes it to every super
// node the client uses and returns once at least one acknowledged it as
// durable. If none did it returns ErrNotDelivered with the result; the
// message stays stored and goes out when the client next reaches a node
// (reconciliation).
func (c *Client) Send(ctx context.Context, name, text string) (SendResult, error) {
	cs, err := c.byName(name)
	if err != nil {
		return SendResult{}, fmt.Errorf("client.Send: %w", err)
	}
	if !cs.key.CanWrite() {
		return SendResult{}, fmt.Errorf("client.Send: %q: %w (a read-only key)", name, ErrCannotWrite)
	}
	return c.postWith(ctx, cs, channel.KindText, []byte(text), true)
}

func (c *Client) post(ctx context.Context, cs *chanState, kind channel.ContentKind, body []byte) (SendResult, error) {
	return c.postWith(ctx, cs, kind, body, false)
}

// postWith seals, stores and pushes a message. With reregister, a message
// every node refused because it does not serve the channel yet is pushed
// once more after a registration round; only for a person's Send, never
// from code that may run while a registration round or the message
// processor holds its locks.
func (c *Client) postWith(ctx context.Context, cs *chanState, kind channel.ContentKind, body []byte, reregister bool) (SendResult, error) {
	e, err := cs.key.Seal(c.self, kind, body, c.nextTimestamp(), rand.Reader)
	if err != nil {
		return SendResult{}, fmt.Errorf("client.Send: %w", err)
	}
	id, err := c.svc.Publish(ctx, e)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return SendResult{ID: id.String()}, fmt.Errorf("client.Send: store locally: %w", err)
	}
	c.process(e) // so History shows it at once, before the subscription does
	res := SendResult{ID: id.String()}
	nodes := c.activeNodes()
	if len(nodes) == 0 {
		return res, fmt.Errorf("client.Send: %w: %w (kept locally)", ErrNotDelivered, ErrNoNodes)
	}
	acked, failed, notWanted := c.pushAll(ctx, nodes, e)
	if reregister && len(acked) == 0 && len(notWanted) > 0 && ctx.Err() == nil {
		// A node that does not serve the channel yet: a channel made a
		// moment ago whose registration round is still on its way.
		// Registering now lists the channels as they are, once.
		if err := c.register(ctx); err == nil {
			var again []string
			acked, again, _ = c.pushAll(ctx, notWanted, e)
			failed = append(failed[:len(failed)-len(notWanted)], again...)
		}
	}
	res.AckedBy, res.Failed = acked, failed
	sort.Strings(res.AckedBy)
	sort.Strings(res.Failed)
	if len(res.AckedBy) == 0 {
		return res, fmt.Errorf("client.Send: %w (kept locally; it goes out when a node takes it): %s", ErrNotDelivered, strings.Join(res.Failed, "; "))
	}
	return res, nil
}

// pushAll pushes e to nodes at once and returns the nodes that hold it,
// the failures as a person reads them (those of notWanted last), and the
// nodes that refused it because they do not serve its channel.
func (c *Client) pushAll(ctx context.Context, nodes []peer.ID, e *channel.Envelope) (acked, failed []string, notWanted []peer.ID) {
	type outcome struct {
		p   peer.ID
		err error
	}
	out := make(chan outcome, len(nodes))
	for _, p := range nodes {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, DefaultPushTimeout)
			defer cancel()
			_, err := c.svc.PushTo(pctx, p, e)
			var rej *peersync.RejectError
			if errors.As(err, &rej) && rej.Reason == wirepb.Reason_REASON_DUPLICATE {
				err = nil // the node already holds it durably (it fetched our announcement)
			}
			out <- outcome{p, err}
		}()
	}
	var nw []string
	for range nodes {
		o := <-out
		var rej *peersync.RejectError
		switch {
		case o.err == nil:
			acked = append(acked, o.p.String())
		case errors.As(o.err, &rej) && rej.Reason == wirepb.Reason_REASON_NOT_WANTED:
			notWanted = append(notWanted, o.p)
			nw = append(nw, c.pushFailure(o.p, o.err))
		default:
			failed = append(failed, c.pushFailure(o.p, o.err))
		}
	}
	return acked, append(failed, nw...), notWanted
}

// processLoop handles every message the sync service stores. It drains
// what is waiting and handles it in timestamp order, so a catch-up after
// being offline reaches the user in the order it was written.
func (c *Client) processLoop(sub <-chan peersync.Stored) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.procQuit:
			return
		case <-tick.C:
			c.catchUp() // the subscription drops messages when far behind
		case st, ok := <-sub:
			if !ok {
				return
			}
			batch := []*channel.Envelope{st.Envelope}
			// A catch-up arrives as a burst, its bodies stored slightly
			// out of order; gathering the burst (until it pauses) lets it
			// reach the user sorted. A live message waits coalesceQuiet.
			quiet := time.NewTimer(coalesceQuiet)
			limit := time.NewTimer(coalesceMax)
		drain:
			for len(batch) < maxBatch {
				select {
				case st, ok := <-sub:
					if !ok {
						break drain
					}
					batch = append(batch, st.Envelope)
					quiet.Reset(coalesceQuiet)
				case <-quiet.C:
					break drain
				case <-limit.C:
					break drain
				}
			}
			quiet.Stop()
			limit.Stop()
			c.processBatch(batch)
		}
	}
}

func (c *Client) processBatch(batch []*channel.Envelope) {
	sort.SliceStable(batch, func(i, j int) bool { return batch[i].Timestamp < batch[j].Timestamp })
	receipts := map[channel.ID][]channel.MessageID{}
	for _, e := range batch {
		m := c.process(e)
		if m != nil && !m.Mine {
			id, _ := channel.ParseMessageID(m.ID)
			receipts[e.Channel] = append(receipts[e.Channel], id)
		}
	}
	if c.cfg.NoReceipts {
		return
	}
	for ch, ids := range receipts {
		c.sendReceipt(ch, ids)
	}
}

// catchUp processes stored messages that were never processed (a crash,
// or a subscription that fell behind).
func (c *Client) catchUp() {
	now := c.cfg.Now()
	from := now.Add(-store.DefaultRetention).UnixMilli()
	to := now.Add(channel.DefaultMaxSkew).UnixMilli() + 1
	for _, ch := range c.channelIDs() {
		hs, err := c.db.Headers(ch, from, to, 0)
		if err != nil {
			c.log.Warn("catch-up: headers", "channel", ch, "err", err)
			continue
		}
		var batch []*channel.Envelope
		for _, h := range hs {
			if seen, _ := c.db.Meta(bucketSeen).Get(h.ID[:]); seen != nil {
				continue
			}
			if e, err := c.db.Get(h.ID); err == nil {
				batch = append(batch, e)
			}
		}
		if len(batch) > 0 {
			c.processBatch(batch)
		}
	}
}

// process opens, records and delivers one envelope, once per message ID.
// It returns the text message it delivered, or nil.
func (c *Client) process(e *channel.Envelope) *Message {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	id := e.ID()
	seen := c.db.Meta(bucketSeen)
	if v, _ := seen.Get(id[:]); v != nil {
		return nil
	}
	c.mu.Lock()
	cs := c.chans[e.Channel]
	c.mu.Unlock()
	if cs == nil || !cs.key.CanRead() {
		return nil // not ours, or write-only: nothing to show
	}
	m, err := cs.key.Open(e)
	if err != nil {
		c.log.Warn("message does not open; dropped", "id", id, "channel", cs.name, "err", err)
		c.markSeen(id, e.Timestamp)
		return nil
	}
	var out *Message
	switch m.Kind {
	case channel.KindText:
		out = &Message{ID: id.String(), Channel: cs.name, ChannelID: e.Channel.String(), Author: m.Author.String(),
			Mine: m.Author == c.self.Public(), Text: string(m.Body), Timestamp: m.Timestamp}
		rec, _ := json.Marshal(historyRecord{Author: out.Author, Text: out.Text})
		if err := c.db.Meta(historyPrefix+e.Channel.String()).Put(historyKey(e.Timestamp, id), rec); err != nil {
			c.log.Error("history: message not recorded", "id", id, "err", err)
			return nil // not marked seen: the next catch-up retries
		}
	case channel.KindReceipt:
		c.recordReceipt(m)
	case channel.KindControl:
		c.handleControl(cs, m)
	case channel.KindBlock:
		c.handleBlockChunk(cs, m)
	}
	c.markSeen(id, e.Timestamp)
	if out != nil {
		c.deliver(*out)
	}
	return out
}

func (c *Client) markSeen(id channel.MessageID, ts int64) {
	if err := c.db.Meta(bucketSeen).Put(id[:], binary.BigEndian.AppendUint64(nil, uint64(ts))); err != nil {
		c.log.Error("seen record", "id", id, "err", err)
	}
}

func historyKey(ts int64, id channel.MessageID) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(ts)^(1<<63))
	return append(k, id[:]...)
}

// History returns the last limit text messages of the named channel
// (limit <= 0: all), oldest first, each with the identities that posted
// a delivery receipt for it.
func (c *Client) History(name string, limit int) ([]Message, error) {
	cs, err := c.byName(name)
	if err != nil {
		return nil, fmt.Errorf("client.History: %w", err)
	}
	var out []Message
	err = c.db.Meta(historyPrefix + cs.key.ID().String()).ForEach(func(k, v []byte) error {
		if len(k) != 8+len(channel.MessageID{}) {
			return nil
		}
		var r historyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("history record: %w", err)
		}
		var id channel.MessageID
		copy(id[:], k[8:])
		ts := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
		out = append(out, Message{ID: id.String(), Channel: name, ChannelID: cs.key.ID().String(), Author: r.Author,
			Mine: r.Author == c.ID(), Text: r.Text, Timestamp: time.UnixMilli(ts)})
		if limit > 0 && len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client.History: %w", err)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	for i := range out {
		out[i].DeliveredTo = c.receiptsFor(out[i].ID)
	}
	return out, nil
}

// sendReceipt posts, through the outbox, that this client received ids.
func (c *Client) sendReceipt(ch channel.ID, ids []channel.MessageID) {
	c.mu.Lock()
	cs := c.chans[ch]
	closed := c.closed
	c.mu.Unlock()
	if cs == nil || closed || !cs.key.CanWrite() {
		return
	}
	for len(ids) > 0 {
		n := min(len(ids), maxReceiptIDs)
		body := make([]byte, 0, n*len(ids[0]))
		for _, id := range ids[:n] {
			body = append(body, id[:]...)
		}
		ids = ids[n:]
		if _, err := c.postLater(cs, channel.KindReceipt, body); err != nil && !errors.Is(err, ErrClosed) {
			c.log.Warn("receipt not stored", "err", err)
		}
	}
}

// decodeReceipt parses a receipt body: a list of message IDs.
func decodeReceipt(b []byte) ([]channel.MessageID, error) {
	n := len(channel.MessageID{})
	if len(b) == 0 || len(b)%n != 0 || len(b)/n > maxReceiptIDs {
		return nil, fmt.Errorf("client: receipt of %d bytes is not 1..%d message IDs", len(b), maxReceiptIDs)
	}
	out := make([]channel.MessageID, len(b)/n)
	for i := range out {
		copy(out[i][:], b[i*n:])
	}
	return out, nil
}

func (c *Client) recordReceipt(m *channel.Message) {
	if m.Author == c.self.Public() {
		return
	}
	ids, err := decodeReceipt(m.Body)
	if err != nil {
		c.log.Warn("bad receipt ignored", "author", m.Author, "err", err)
		return
	}
	r := c.db.Meta(bucketReceipts)
	for _, id := range ids {
		v, _ := r.Get(id[:])
		dup := false
		for i := 0; i+32 <= len(v); i += 32 {
			if [32]byte(v[i:i+32]) == m.Author {
				dup = true
				break
			}
		}
		if dup || len(v) >= 32*1024 {
			continue
		}
		if err := r.Put(id[:], append(v, m.Author[:]...)); err != nil {
			c.log.Error("receipt record", "err", err)
			continue
		}
		c.emit(Event{Kind: EventReceipt, MessageID: id.String(), Reader: m.Author.String()})
	}
}

func (c *Client) receiptsFor(idHex string) []string {
	id, err := channel.ParseMessageID(idHex)
	if err != nil {
		return nil
	}
	v, _ := c.db.Meta(bucketReceipts).Get(id[:])
	var out []string
	for i := 0; i+32 <= len(v); i += 32 {
		out = append(out, channel.IdentityKey(v[i:i+32]).String())
	}
	return out
}

// listener is one subscriber of incoming messages, with an unbounded
// queue so a slow reader never stalls message processing.
type listener struct {
	mu     sync.Mutex
	queue  []Message
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
	out    chan Message
	filter string
}

func (l *listener) stop() { l.once.Do(func() { close(l.done) }) }

func (l *listener) run() {
	defer close(l.out)
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		for _, m := range q {
			select {
			case l.out <- m:
			case <-l.done:
				return
			}
		}
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
	}
}

func (c *Client) deliver(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for l := range c.listen {
		if l.filter != "" && l.filter != m.Channel {
			continue
		}
		l.mu.Lock()
		l.queue = append(l.queue, m)
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns the text messages that arrive from now on (channel
// name "" means all channels), in the order they are processed, and a
// function that ends the subscription. Own messages are included (Mine).
func (c *Client) Subscribe(name string) (<-chan Message, func(), error) {
	if name != "" {
		if _, err := c.byName(name); err != nil {
			return nil, nil, fmt.Errorf("client.Subscribe: %w", err)
		}
	}
	l := &listener{wake: make(chan struct{}, 1), done: make(chan struct{}), out: make(chan Message), filter: name}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, ErrClosed
	}
	c.listen[l] = struct{}{}
	c.mu.Unlock()
	go l.run()
	return l.out, func() {
		c.mu.Lock()
		delete(c.listen, l)
		c.mu.Unlock()
		l.stop()
	}, nil
}

// MessageHandler receives messages from Listen (an interface, so that a
// mobile binding can implement it).
type MessageHandler interface{ OnMessage(m Message) }

// HandlerFunc adapts a function to MessageHandler.
type HandlerFunc func(Message)

// OnMessage calls f.
func (f HandlerFunc) OnMessage(m Message) { f(m) }

// Listen calls h for every text message that arrives in the named channel
// ("" for all) until ctx ends or the client closes.
func (c *Client) Listen(ctx context.Context, name string, h MessageHandler) error {
	ch, cancel, err := c.Subscribe(name)
	if err != nil {
		return err
	}
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				return ErrClosed
			}
			h.OnMessage(m)
		}
	}
}
