package redpanda

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redpanda-p2p/homenode/internal/nonetlink"
	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// TestMain runs the tests, or, in a child this package's tests start
// under the netlink filter (nonetlink), installs the filter first and
// either runs the test the parent named or execs the program it named
// (the JVM).
func TestMain(m *testing.M) {
	if _, err := nonetlink.InstallIfAsked(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if scratch.dir != "" {
			os.RemoveAll(scratch.dir)
		}
		os.Exit(code)
	}))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNode runs a real super node on loopback, owned by the identity
// owner ("" for none), without the DHT.
func startNode(t testing.TB, owner string) *node.Node {
	t.Helper()
	rc := routing.Config{Logger: quiet()}
	if owner != "" {
		id, err := channel.ParseIdentityKey(owner)
		if err != nil {
			t.Fatal(err)
		}
		rc.Owner = id
	}
	n, err := node.New(node.Config{DataDir: t.TempDir(), NoDHT: true, Routing: rc,
		P2P: p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func open(t testing.TB, name string) *Client {
	t.Helper()
	c, err := Open(&Options{Home: filepath.Join(t.TempDir(), name), Create: true, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder is a Listener that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	msgs   []*Message
	events []*Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) OnMessage(m *Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) OnEvent(e *Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds over what was recorded (a liveness
// bound, not a speed assertion).
func (r *recorder) waitFor(t testing.TB, what string, cond func(msgs []*Message, events []*Event) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.msgs, r.events)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no %s within 60 s: %d messages, events %v", what, len(r.msgs), kinds(r.events))
		}
	}
}

func (r *recorder) texts(channel string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if m.Channel == channel {
			out = append(out, m.Text)
		}
	}
	return out
}

// count is the number of messages of channel, mine or not.
func (r *recorder) count(channel string, mine bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return count(r.msgs, channel, mine)
}

func kinds(es []*Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind)
	}
	return out
}

func count(msgs []*Message, channel string, mine bool) int {
	n := 0
	for _, m := range msgs {
		if m.Channel == channel && m.Mine == mine {
			n++
		}
	}
	return n
}

// wantCode fails unless err has code.
func wantCode(t testing.TB, what string, err error, code int) {
	t.Helper()
	if got := ErrorCode(err); got != code {
		t.Errorf("%s: code %d (%s), want %d (%s); err %v", what, got, ErrorName(got), code, ErrorName(code), err)
	}
}
