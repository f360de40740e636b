package testkit

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var mu sync.Mutex
	n := 0
	go func() {
		for range 3 {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	Eventually(t, "three", func() bool { mu.Lock(); defer mu.Unlock(); return n == 3 })
}

// TestEventuallyGivesUp runs Eventually against a condition that never
// holds, on a recorder, so the failure is observed, not suffered.
func TestEventuallyGivesUp(t *testing.T) {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		eventually(r, "never", func() bool { return false }, 50*time.Millisecond)
	}()
	<-done
	if r.msg != "gave up waiting for never" {
		t.Fatalf("failure %q", r.msg)
	}
}

// recorder is a testing.TB whose Fatalf records and stops the goroutine.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestLogBuffer(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { fmt.Fprint(&b, "x") })
	}
	wg.Wait()
	if b.String() != "xxxx" {
		t.Fatalf("%q", b.String())
	}
}

func TestClocks(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	c := NewClock(at)
	c.Advance(time.Hour)
	if !c.Now().Equal(at.Add(time.Hour)) {
		t.Fatalf("advanced to %v", c.Now())
	}
	c.Set(at)
	if !c.Now().Equal(at) {
		t.Fatalf("set to %v", c.Now())
	}
	var o OffsetClock
	o.Advance(24 * time.Hour)
	if d := time.Until(o.Now()); d < 23*time.Hour {
		t.Fatalf("offset clock is %v ahead", d)
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("TCP on the free port %d: %v", p, err)
	}
	defer l.Close()
	c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("UDP on the free port %d: %v", p, err)
	}
	c.Close()
}
