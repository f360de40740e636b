package board

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"
)

const evSyn uint16 = 0

// press writes what a gpio-keys device sends for one key change: the key
// event followed by a SYN_REPORT.
func press(b []byte, longLen int, t time.Time, code uint16, v int32) []byte {
	b = AppendInputEvent(b, longLen, t, EvKey, code, v)
	return AppendInputEvent(b, longLen, t, evSyn, 0, 0)
}

func TestInputReader(t *testing.T) {
	at := time.Unix(1764000000, 123456000)
	for _, longLen := range []int{4, 8} {
		var b []byte
		b = press(b, longLen, at, KeyPower, KeyPressed)
		b = press(b, longLen, at.Add(time.Second), KeyPower, KeyRepeated)
		b = press(b, longLen, at.Add(2*time.Second), KeyPower, KeyReleased)
		r := NewInputReader(bytes.NewReader(b), longLen)
		if r.EventSize() != 2*longLen+8 {
			t.Fatalf("event size %d", r.EventSize())
		}
		for i, want := range []int32{KeyPressed, KeyRepeated, KeyReleased} {
			ev, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Code != KeyPower || ev.Value != want || !ev.Time.Equal(at.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("longLen %d event %d = %+v", longLen, i, ev)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
		// A stream cut inside a record is an error, not a zero event.
		if _, err := NewInputReader(bytes.NewReader(b[:5]), longLen).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated: %v", err)
		}
		bad := AppendInputEvent(nil, longLen, at, EvKey, KeyPower, 7)
		if _, err := NewInputReader(bytes.NewReader(bad), longLen).Next(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("value 7: %v", err)
		}
	}
}

// runButton plays src into a Button whose hold timer the test fires.
func runButton(t *testing.T, b *Button) (chan<- []byte, <-chan ButtonEvent, chan time.Time, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	fire := make(chan time.Time)
	b.After = func(d time.Duration) <-chan time.Time {
		if d != DefaultHold {
			t.Errorf("hold timer %v, want %v", d, DefaultHold)
		}
		return fire
	}
	in := make(chan []byte)
	go func() {
		for chunk := range in {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	out := make(chan ButtonEvent)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); pr.Close() })
	go func() { done <- b.Run(ctx, NewInputReader(pr, 0), out) }()
	return in, out, fire, done
}

func TestButtonShortPressAndHold(t *testing.T) {
	in, out, fire, done := runButton(t, &Button{Code: KeyPower})
	now := time.Unix(1764000000, 0)

	// A quick press and release is a short press.
	in <- press(nil, 0, now, KeyPower, KeyPressed)
	in <- press(nil, 0, now, KeyPower, KeyReleased)
	if ev := <-out; ev != ShortPress {
		t.Fatalf("got %v, want short press", ev)
	}

	// Another key is ignored.
	in <- press(nil, 0, now, 30, KeyPressed)

	// Held until the timer fires: Held, once, and no short press on release.
	in <- press(nil, 0, now, KeyPower, KeyPressed)
	in <- press(nil, 0, now, KeyPower, KeyRepeated)
	fire <- now.Add(DefaultHold)
	if ev := <-out; ev != Held {
		t.Fatalf("got %v, want held", ev)
	}
	in <- press(nil, 0, now, KeyPower, KeyReleased)

	// Holding again must yield Held next: a stray short press from the
	// release above would arrive first.
	in <- press(nil, 0, now, KeyPower, KeyPressed)
	go func() { fire <- now.Add(2 * DefaultHold) }()
	if ev := <-out; ev != Held {
		t.Fatalf("got %v, want held (release after a hold must not count as a press)", ev)
	}

	// The device going away ends Run with an error.
	close(in)
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("Run after EOF: %v", err)
	}
}

func TestButtonStopsOnCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Button{}).Run(ctx, NewInputReader(pr, 0), make(chan ButtonEvent)) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run on cancel: %v", err)
	}
}

func TestFindButton(t *testing.T) {
	if dev, err := FindButton("testdata/pi4b"); err != nil || dev != filepath.Join("testdata/pi4b", "dev/input/event0") {
		t.Errorf("pi4b: %q, %v", dev, err)
	}
	for _, f := range []string{"testdata/pi5b", "testdata/x86pc"} {
		if _, err := FindButton(f); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzInputReader(f *testing.F) {
	f.Add(press(nil, 8, time.Unix(1, 0), KeyPower, KeyPressed))
	f.Add(press(nil, 4, time.Unix(1, 0), KeyPower, KeyReleased))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range []int{4, 8} {
			r := NewInputReader(bytes.NewReader(b), n)
			for range len(b)/r.EventSize() + 1 {
				ev, err := r.Next()
				if err != nil {
					break
				}
				if ev.Value < KeyReleased || ev.Value > KeyRepeated {
					t.Fatalf("accepted value %d", ev.Value)
				}
			}
		}
	})
}
