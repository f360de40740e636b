package logthrottle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records decodes the JSON lines written so far.
func (l *lines) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line %q: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newLogger(t *testing.T, o Options) (*slog.Logger, *Handler, *lines, *fakeClock) {
	t.Helper()
	out := &lines{}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	o.Now = clk.now
	h := New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}), o)
	return slog.New(h), h, out, clk
}

func count(rs []map[string]any, msg string) int {
	n := 0
	for _, r := range rs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

func suppressed(rs []map[string]any) int {
	n := 0
	for _, r := range rs {
		if r["msg"] == SummaryMessage {
			n += int(r["suppressed"].(float64))
		}
	}
	return n
}

// TestOnePeerRepeating: one peer's repeated line passes PeerBurst times,
// then once per PeerEvery; every line held back is counted in a summary,
// and other peers and other messages are not held back with it.
func TestOnePeerRepeating(t *testing.T) {
	log, _, out, clk := newLogger(t, Options{})
	bad := log.With("component", "provisioning", "peer", "12D3KooWAttacker")
	for range 1000 {
		bad.Warn("pairing attempt failed", "reason", "wrong token")
	}
	log.Info("registration refused", "peer", "12D3KooWFriend", "status", "full")
	log.Warn("pairing attempt failed", "peer", "12D3KooWPhone", "reason", "typo")
	rs := out.records(t)
	if got := count(rs, "pairing attempt failed"); got != DefaultPeerBurst+1 {
		t.Fatalf("%d lines passed, want the burst of %d and the other peer's", got, DefaultPeerBurst)
	}
	if count(rs, "registration refused") != 1 {
		t.Fatal("another message was held back with the flood")
	}
	// A minute later one more passes, after a summary of the 995 held.
	clk.t = clk.t.Add(DefaultPeerEvery)
	bad.Warn("pairing attempt failed", "reason", "wrong token")
	rs = out.records(t)
	if got := suppressed(rs); got != 1000-DefaultPeerBurst {
		t.Fatalf("summaries count %d held lines, want %d", got, 1000-DefaultPeerBurst)
	}
	var sum map[string]any
	for _, r := range rs {
		if r["msg"] == SummaryMessage {
			sum = r
		}
	}
	if sum["level"] != "WARN" || sum["message"] != "pairing attempt failed" || sum["from_peer"] != "12D3KooWAttacker" ||
		sum["component"] != "provisioning" {
		t.Fatalf("summary %v lacks the level, message, peer or the logger's attributes", sum)
	}
	if last := rs[len(rs)-1]; last["msg"] != "pairing attempt failed" {
		t.Fatalf("the summary does not come before the line that passed: last %v", last)
	}
}

// TestManyPeersOneMessage: fresh peer IDs (they cost nothing) each saying
// the same thing are held to the message's own budget.
func TestManyPeersOneMessage(t *testing.T) {
	log, h, out, clk := newLogger(t, Options{})
	const n = 20000
	for i := range n {
		log.Info("registration refused", "peer", fmt.Sprintf("12D3KooW%06d", i), "status", "not allowed")
		if i%1000 == 999 {
			clk.t = clk.t.Add(time.Second) // 1,000 a second
		}
	}
	h.Flush(context.Background())
	rs := out.records(t)
	passed := count(rs, "registration refused")
	// 20 s at one a second after the burst.
	if max := DefaultMessageBurst + 20; passed > max {
		t.Fatalf("%d of %d lines passed, want at most %d", passed, n, max)
	}
	if got := suppressed(rs); got+passed != n {
		t.Fatalf("%d passed + %d summarised != %d", passed, got, n)
	}
}

// TestNoPeer: lines without a peer are limited per message only.
func TestNoPeer(t *testing.T) {
	log, h, out, _ := newLogger(t, Options{MessageBurst: 3})
	for range 10 {
		log.Info("status")
	}
	log.Info("other")
	h.Flush(context.Background())
	rs := out.records(t)
	if count(rs, "status") != 3 || count(rs, "other") != 1 || suppressed(rs) != 7 {
		t.Fatalf("records %v", rs)
	}
}

// TestBounded: the pairs remembered stay under MaxKeys; a forgotten
// pair's count is still summarised.
func TestBounded(t *testing.T) {
	log, h, out, _ := newLogger(t, Options{MaxKeys: 64, PeerBurst: 1, MessageBurst: 1 << 20})
	for i := range 1000 {
		p := fmt.Sprint("peer-", i)
		log.Info("x", "peer", p)
		log.Info("x", "peer", p)
		h.s.mu.Lock()
		k := len(h.s.keys)
		h.s.mu.Unlock()
		if k > 64 {
			t.Fatalf("%d keys, bound 64", k)
		}
	}
	h.Flush(context.Background())
	rs := out.records(t)
	if count(rs, "x") != 1000 || suppressed(rs) != 1000 {
		t.Fatalf("passed %d, summarised %d; want 1000 and 1000", count(rs, "x"), suppressed(rs))
	}
}

// TestRun flushes on its ticker and when its context ends.
func TestRun(t *testing.T) {
	out := &lines{}
	h := New(slog.NewJSONHandler(out, nil), Options{PeerBurst: 1})
	log := slog.New(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx, time.Hour); close(done) }()
	log.Info("a", "peer", "p")
	log.Info("a", "peer", "p")
	cancel()
	<-done
	if got := suppressed(out.records(t)); got != 1 {
		t.Fatalf("summarised %d at the end, want 1", got)
	}
}
