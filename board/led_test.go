package board

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readAttr(t *testing.T, dir, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestLEDFixtures(t *testing.T) {
	tests := []struct {
		fixture, on string
	}{
		{"pi3b", "255"}, // led0 on an older 32-bit kernel
		{"pi4b", "1"},   // ACT, a gpio-led
		{"pi5b", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			info, err := Detect(copyTree(t, filepath.Join("testdata", tt.fixture)))
			if err != nil {
				t.Fatal(err)
			}
			led, err := OpenLED(info.LEDPath)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAttr(t, info.LEDPath, "trigger"); got != "none" {
				t.Fatalf("trigger after open = %q", got)
			}
			if err := led.Set(true); err != nil {
				t.Fatal(err)
			}
			if got := readAttr(t, info.LEDPath, "brightness"); got != tt.on {
				t.Fatalf("brightness on = %q, want %q", got, tt.on)
			}
			if err := led.Set(false); err != nil {
				t.Fatal(err)
			}
			if got := readAttr(t, info.LEDPath, "brightness"); got != "0" {
				t.Fatalf("brightness off = %q", got)
			}
			if err := led.Release(); err != nil {
				t.Fatal(err)
			}
			if got := readAttr(t, info.LEDPath, "trigger"); got != "mmc0" {
				t.Fatalf("trigger after release = %q, want mmc0", got)
			}
		})
	}
}

// Blink plays the pattern step by step: the injected Sleep observes the
// brightness file the kernel would see at each step, and ends the run after
// two rounds.
func TestLEDBlinkPatterns(t *testing.T) {
	info, err := Detect(copyTree(t, "testdata/pi4b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		p    Pattern
	}{{"waiting for pairing", WaitingForPairing}, {"running", Running},
		{"factory reset", FactoryResetArmed}, {"fault", Fault}} {
		t.Run(p.name, func(t *testing.T) {
			led, err := OpenLED(info.LEDPath)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var seen []Step
			led.Sleep = func(ctx context.Context, d time.Duration) error {
				seen = append(seen, Step{readAttr(t, info.LEDPath, "brightness") == "1", d})
				if len(seen) == 2*len(p.p) {
					cancel()
					return ctx.Err()
				}
				return nil
			}
			if err := led.Blink(ctx, p.p); err != nil {
				t.Fatal(err)
			}
			if want := slices.Concat(p.p, p.p); !slices.Equal(seen, want) {
				t.Fatalf("played %v, want %v", seen, want)
			}
			if got := readAttr(t, info.LEDPath, "brightness"); got != "0" {
				t.Fatalf("LED left at %q after Blink", got)
			}
		})
	}
}

// The patterns must be tellable apart: no two are the same sequence.
func TestPatternsDistinct(t *testing.T) {
	ps := []Pattern{WaitingForPairing, Running, FactoryResetArmed, Fault}
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if slices.Equal(ps[i], ps[j]) {
				t.Errorf("patterns %d and %d are identical", i, j)
			}
		}
	}
}

func TestLEDErrors(t *testing.T) {
	if _, err := OpenLED(""); !errors.Is(err, ErrNotSupported) {
		t.Errorf("OpenLED(\"\") = %v", err)
	}
	if _, err := OpenLED(t.TempDir()); err == nil {
		t.Error("OpenLED on a directory without trigger: no error")
	}
	root := copyTree(t, "testdata/pi5b")
	info, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	led, err := OpenLED(info.LEDPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := led.Blink(context.Background(), nil); err == nil {
		t.Error("empty pattern: no error")
	}
	// The LED disappearing (device unbound) is a write error, not a hang.
	if err := os.RemoveAll(info.LEDPath); err != nil {
		t.Fatal(err)
	}
	if err := led.Blink(context.Background(), Fault); err == nil {
		t.Error("Blink on a vanished LED: no error")
	}
}

func TestActiveTrigger(t *testing.T) {
	tests := map[string]string{
		"none [mmc0] timer\n": "mmc0",
		"[none] mmc0":         "none",
		"none mmc0":           "none",
		"":                    "none",
	}
	for in, want := range tests {
		if got := activeTrigger(in); got != want {
			t.Errorf("activeTrigger(%q) = %q, want %q", in, got, want)
		}
	}
}
