// Package testkit holds the helpers the project's tests share, so that
// each package's tests stop keeping a copy: waiting for a condition
// (Eventually), a log sink a test reads while goroutines write it
// (LogBuffer), clocks a test moves by hand (Clock, OffsetClock), and the
// goroutine-leak check with the ignores libp2p needs (VerifyNone).
//
// It is for tests only: no production package imports it (the dependency
// test in internal/deptest says so). It must not know any package of
// this module, so that every package's tests can use it; a libp2p host
// for tests is in testkit/testhost, apart, so that tests without libp2p
// do not link it.
package testkit

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// WaitLimit bounds Eventually. It is there for liveness, so that a hung
// test fails instead of hanging; it asserts nothing about speed.
const WaitLimit = 20 * time.Second

// Eventually polls cond until it holds and fails the test with what if it
// does not within WaitLimit.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, cond, WaitLimit)
}

func eventually(t testing.TB, what string, cond func() bool, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LogBuffer is a bytes.Buffer that a test reads while other goroutines
// (handlers, a child process's output copier) write it: a slog sink.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Clock is a clock that stands still until the test sets or advances it;
// its Now fits every Config.Now and Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// OffsetClock is real time plus an offset the test moves, for tests whose
// signed requests carry the real time and must stay fresh until the test
// jumps ahead. The zero value is real time.
type OffsetClock struct{ off atomic.Int64 }

// Now is real time plus the offset.
func (c *OffsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Advance adds d to the offset.
func (c *OffsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }
