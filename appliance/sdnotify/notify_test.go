package sdnotify_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// listen makes a unixgram socket playing systemd's notify socket and points
// NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	conn, path := testkit.NotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next reads one datagram. The deadline only keeps a broken test from
// hanging; no assertion depends on how fast anything is.
func next(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading notify socket: %v", err)
	}
	return string(buf[:n])
}

// pending reports a datagram already queued, without waiting for more.
func pending(conn *net.UnixConn) (string, bool) {
	conn.SetReadDeadline(time.Now())
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func TestNotifications(t *testing.T) {
	conn := listen(t)
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", sdnotify.Ready, "READY=1"},
		{"status", func() error { return sdnotify.Status("owned by x; 3 peers") }, "STATUS=owned by x; 3 peers"},
		{"status newline", func() error { return sdnotify.Status("a\nb") }, "STATUS=a b"},
		{"stopping", sdnotify.Stopping, "STOPPING=1"},
		{"extend timeout", func() error { return sdnotify.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatal(err)
			}
			if got := next(t, conn); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoSystemdIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	for _, f := range []func() error{sdnotify.Ready, sdnotify.Stopping, func() error { return sdnotify.Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v", err)
		}
	}
	check := func(context.Context) error { t.Error("check called without a watchdog"); return nil }
	if err := sdnotify.RunWatchdog(context.Background(), check, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("RunWatchdog without watchdog: %v", err)
	}
}

func TestNotifySocketGoneIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	if err := sdnotify.Ready(); err == nil || !strings.Contains(err.Error(), "READY") {
		t.Errorf("Ready to a missing socket: %v", err)
	}
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor blocks until the log contains sub.
func (s *syncBuffer) waitFor(sub string) {
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), sub) {
			s.mu.Unlock()
			return
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		<-ch
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The test drives the health check by hand: every check call announces
// itself and waits for the result the test hands it, so which pings must
// and must not arrive is decided by the test, not by timing.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")

	called := make(chan struct{})
	results := make(chan error)
	done := make(chan struct{})
	check := func(context.Context) error {
		select {
		case called <- struct{}{}:
		case <-done:
			return errors.New("test over")
		}
		select {
		case err := <-results:
			return err
		case <-done:
			return errors.New("test over")
		}
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- sdnotify.RunWatchdog(ctx, check, log) }()
	defer close(done)

	healthy := func() {
		<-called
		results <- nil
		if got := next(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("after a passing check got %q, want WATCHDOG=1", got)
		}
	}
	healthy()
	healthy()

	wedged := errors.New("store loop wedged")
	for range 3 {
		<-called
		results <- wedged
	}
	<-called // the loop has finished with the third failure
	if got, ok := pending(conn); ok {
		t.Fatalf("got %q while the check was failing", got)
	}
	results <- nil
	if got := next(t, conn); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q, want WATCHDOG=1", got)
	}

	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("RunWatchdog: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"watchdog enabled", "no longer pinging", "store loop wedged", "pinging resumed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "no longer pinging"); n != 1 {
		t.Errorf("failure logged %d times, want once per outage:\n%s", n, out)
	}
}

// A check that never answers is a failure, not a wedged watchdog.
func TestWatchdogCheckThatNeverAnswers(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	release := make(chan struct{})
	defer close(release)
	var calls sync.WaitGroup
	calls.Add(1)
	var once sync.Once
	check := func(context.Context) error {
		once.Do(calls.Done)
		<-release // ignores ctx, as a truly stuck loop would
		return nil
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- sdnotify.RunWatchdog(ctx, check, slog.New(slog.NewTextHandler(&logs, nil))) }()
	calls.Wait()
	logs.waitFor("did not answer")
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got, ok := pending(conn); ok {
		t.Errorf("got %q from a check that never answered", got)
	}
}
