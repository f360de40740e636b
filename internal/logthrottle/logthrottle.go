// Package logthrottle keeps a flood of remote peers from filling the SD
// card with log lines: a slog.Handler wrapper that lets a repeated line
// through a few times and then only now and then, and says how many it
// held back ("N similar lines suppressed").
//
// A line repeats when it has the same message and comes from the same
// peer: the value of its "peer" attribute (or, without one, "identity"),
// given with the record or earlier through Logger.With. Each such pair
// has a token bucket (PeerBurst, then one per PeerEvery). Because peer
// IDs cost an attacker nothing, each message also has a bucket of its own
// over all peers (MessageBurst, then one per MessageEvery), so a thousand
// fresh peers saying the same thing are still one flood. What a bucket
// holds back is counted; the count is written as one summary line at the
// level of the lines it stands for, before the next line of that kind
// that passes, or at the latest by Flush (which the daemon runs every
// FlushEvery).
//
// It knows log/slog only; which messages are attacker-driven is not its
// business: every message is treated alike.
package logthrottle

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Options fields left zero.
const (
	DefaultPeerBurst    = 5
	DefaultPeerEvery    = time.Minute
	DefaultMessageBurst = 50
	DefaultMessageEvery = time.Second
	DefaultFlushEvery   = time.Minute
	DefaultMaxKeys      = 4096
)

// SummaryMessage is the message of a summary line.
const SummaryMessage = "similar log lines suppressed"

// Options tune a Handler.
type Options struct {
	PeerBurst    int
	PeerEvery    time.Duration
	MessageBurst int
	MessageEvery time.Duration
	// MaxKeys bounds the (message, peer) pairs remembered; the least
	// recently used is forgotten first, its count summarised.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.PeerBurst <= 0 {
		o.PeerBurst = DefaultPeerBurst
	}
	if o.PeerEvery <= 0 {
		o.PeerEvery = DefaultPeerEvery
	}
	if o.MessageBurst <= 0 {
		o.MessageBurst = DefaultMessageBurst
	}
	if o.MessageEvery <= 0 {
		o.MessageEvery = DefaultMessageEvery
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Handler is the wrapper. Handlers made by WithAttrs and WithGroup share
// their parent's buckets.
type Handler struct {
	next slog.Handler
	peer string // the peer given through WithAttrs, if any
	s    *state
}

// New wraps next.
func New(next slog.Handler, o Options) *Handler {
	o.setDefaults()
	return &Handler{next: next, s: &state{o: o, keys: map[key]*list.Element{}}}
}

type key struct{ msg, peer string }

// bucket is a token bucket with what it held back.
type bucket struct {
	key        key
	tokens     float64
	at         time.Time
	suppressed int
	first      time.Time    // first line held back since the last summary
	level      slog.Level   // of the last line held back
	next       slog.Handler // where the summary goes (with the lines' attributes)
}

type state struct {
	o    Options
	mu   sync.Mutex
	keys map[key]*list.Element // of *bucket
	lru  list.List
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if p := peerOf(as, ""); p != "" {
		c.peer = p
	}
	return &c
}

// WithGroup implements slog.Handler. Attributes inside a group do not
// name the peer.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

func peerOf(as []slog.Attr, dflt string) string {
	p, id := "", ""
	for _, a := range as {
		switch a.Key {
		case "peer":
			p = a.Value.String()
		case "identity":
			id = a.Value.String()
		}
	}
	switch {
	case p != "":
		return p
	case id != "":
		return id
	}
	return dflt
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	peer := h.peer
	if r.NumAttrs() > 0 {
		var as []slog.Attr
		r.Attrs(func(a slog.Attr) bool { as = append(as, a); return true })
		peer = peerOf(as, peer)
	}
	now := h.s.o.Now()
	pass, summaries := h.s.admit(key{r.Message, peer}, r.Level, h.next, now)
	for _, sm := range summaries {
		_ = sm.emit(ctx, now)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// summary is a pending summary line taken out of a bucket.
type summary struct {
	key   key
	n     int
	first time.Time
	level slog.Level
	next  slog.Handler
}

func (sm summary) emit(ctx context.Context, now time.Time) error {
	r := slog.NewRecord(now, sm.level, SummaryMessage, 0)
	r.AddAttrs(slog.Int("suppressed", sm.n), slog.String("message", sm.key.msg))
	if sm.key.peer != "" {
		r.AddAttrs(slog.String("from_peer", sm.key.peer))
	}
	r.AddAttrs(slog.Duration("over", now.Sub(sm.first).Round(time.Second)))
	return sm.next.Handle(ctx, r)
}

// admit decides one line: it passes when both its (message, peer) bucket
// and, for a line with a peer, its message's bucket have a token. The
// summaries returned are written first.
func (s *state) admit(k key, level slog.Level, next slog.Handler, now time.Time) (bool, []summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []summary
	pb, evicted := s.get(k, now)
	out = append(out, evicted...)
	var mb *bucket
	if k.peer != "" {
		var ev []summary
		mb, ev = s.get(key{msg: k.msg}, now)
		out = append(out, ev...)
	}
	if k.peer == "" {
		s.refill(pb, s.o.MessageBurst, s.o.MessageEvery, now)
	} else {
		s.refill(pb, s.o.PeerBurst, s.o.PeerEvery, now)
		s.refill(mb, s.o.MessageBurst, s.o.MessageEvery, now)
	}
	ok := pb.tokens >= 1 && (mb == nil || mb.tokens >= 1)
	if !ok {
		// Counted where it was held back: on the peer's own bucket when
		// that one ran dry, else on the message's.
		held := pb
		if pb.tokens >= 1 && mb != nil {
			held = mb
		}
		if held.suppressed == 0 {
			held.first = now
		}
		held.suppressed++
		held.level, held.next = level, next
		return false, out
	}
	pb.tokens--
	if mb != nil {
		mb.tokens--
		if mb.suppressed > 0 {
			out = append(out, mb.take())
		}
	}
	if pb.suppressed > 0 {
		out = append(out, pb.take())
	}
	return true, out
}

func (b *bucket) take() summary {
	sm := summary{key: b.key, n: b.suppressed, first: b.first, level: b.level, next: b.next}
	b.suppressed = 0
	return sm
}

func (s *state) refill(b *bucket, burst int, every time.Duration, now time.Time) {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
		return
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(el)/float64(every))
		b.at = now
	}
}

// get returns k's bucket, making it; forgetting the least recently used
// past MaxKeys returns its pending summary.
func (s *state) get(k key, now time.Time) (*bucket, []summary) {
	if e, ok := s.keys[k]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*bucket), nil
	}
	var out []summary
	for len(s.keys) >= s.o.MaxKeys {
		old := s.lru.Back()
		b := old.Value.(*bucket)
		if b.suppressed > 0 {
			out = append(out, b.take())
		}
		s.lru.Remove(old)
		delete(s.keys, b.key)
	}
	b := &bucket{key: k}
	s.keys[k] = s.lru.PushFront(b)
	return b, out
}

// Flush writes the summary of every line held back so far.
func (h *Handler) Flush(ctx context.Context) {
	now := h.s.o.Now()
	h.s.mu.Lock()
	var out []summary
	for e := h.s.lru.Front(); e != nil; e = e.Next() {
		if b := e.Value.(*bucket); b.suppressed > 0 {
			out = append(out, b.take())
		}
	}
	h.s.mu.Unlock()
	for _, sm := range out {
		_ = sm.emit(ctx, now)
	}
}

// Run flushes every FlushEvery until ctx ends, then once more.
func (h *Handler) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultFlushEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.Flush(context.Background())
			return
		case <-t.C:
			h.Flush(ctx)
		}
	}
}
