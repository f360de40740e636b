package board

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Step is one phase of a blink pattern: the LED on or off for a duration.
type Step struct {
	On  bool
	For time.Duration
}

// Pattern is a sequence of steps played in a loop. Each pattern the node
// uses is distinct enough to tell apart by eye without a manual.
type Pattern []Step

// Patterns the appliance shows.
var (
	// WaitingForPairing: two short blinks, then a pause — "come and pair me".
	WaitingForPairing = Pattern{{true, 150 * time.Millisecond}, {false, 150 * time.Millisecond},
		{true, 150 * time.Millisecond}, {false, 1200 * time.Millisecond}}
	// Running: a short blip every three seconds, so a glance shows the node is alive.
	Running = Pattern{{true, 80 * time.Millisecond}, {false, 2920 * time.Millisecond}}
	// FactoryResetArmed: fast even blinking while the button is held.
	FactoryResetArmed = Pattern{{true, 100 * time.Millisecond}, {false, 100 * time.Millisecond}}
	// Fault: slow even blinking; the status page says what is wrong.
	Fault = Pattern{{true, time.Second}, {false, time.Second}}
)

// LED drives an LED through sysfs (/sys/class/leds/NAME). Taking it over
// sets its trigger to "none"; Release gives it back to the kernel trigger
// it had (on a Pi, "mmc0": SD-card activity).
type LED struct {
	dir  string
	max  int
	prev string // trigger active when opened; restored by Release

	mu sync.Mutex // one writer at a time: Blink and Set may race otherwise

	// Sleep waits between steps; tests replace it to step through a
	// pattern without waiting. It returns ctx.Err() when ctx ends first.
	Sleep func(ctx context.Context, d time.Duration) error
}

// OpenLED takes over the LED whose sysfs directory is dir (Info.LEDPath).
func OpenLED(dir string) (*LED, error) {
	if dir == "" {
		return nil, fmt.Errorf("board.OpenLED: %w", ErrNotSupported)
	}
	l := &LED{dir: dir, max: 1, Sleep: sleepCtx}
	if b, err := os.ReadFile(filepath.Join(dir, "max_brightness")); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			l.max = v
		}
	}
	trig, err := os.ReadFile(filepath.Join(dir, "trigger"))
	if err != nil {
		return nil, fmt.Errorf("board.OpenLED: %w", err)
	}
	l.prev = activeTrigger(string(trig))
	if err := l.write("trigger", "none"); err != nil {
		return nil, fmt.Errorf("board.OpenLED: %w", err)
	}
	return l, nil
}

// activeTrigger picks the bracketed entry of a sysfs trigger list:
// "none [mmc0] timer" -> "mmc0".
func activeTrigger(list string) string {
	for _, f := range strings.Fields(list) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			return strings.Trim(f, "[]")
		}
	}
	return "none"
}

// Set turns the LED fully on or off.
func (l *LED) Set(on bool) error {
	v := "0"
	if on {
		v = strconv.Itoa(l.max)
	}
	if err := l.write("brightness", v); err != nil {
		return fmt.Errorf("board.LED.Set: %w", err)
	}
	return nil
}

// Blink plays p in a loop until ctx ends, then leaves the LED off. It
// returns nil on cancellation and an error if a write fails.
func (l *LED) Blink(ctx context.Context, p Pattern) error {
	if len(p) == 0 {
		return fmt.Errorf("board.LED.Blink: empty pattern")
	}
	defer l.Set(false) //nolint:errcheck // best effort on the way out; the loop reports write errors
	for {
		for _, s := range p {
			if err := l.Set(s.On); err != nil {
				return err
			}
			if err := l.Sleep(ctx, s.For); err != nil {
				return nil
			}
		}
	}
}

// Release hands the LED back to the kernel trigger it had when opened.
func (l *LED) Release() error {
	if err := l.write("trigger", l.prev); err != nil {
		return fmt.Errorf("board.LED.Release: %w", err)
	}
	return nil
}

func (l *LED) write(attr, v string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// O_TRUNC without O_CREATE: sysfs attributes exist or the LED is gone.
	f, err := os.OpenFile(filepath.Join(l.dir, attr), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
