package provisioning

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

func TestButtonHold(t *testing.T) {
	type step struct {
		press, release bool
		advance        time.Duration
	}
	tests := []struct {
		name  string
		steps []step
		fires int32
	}{
		{"held 10 s", []step{{press: true}, {advance: 10 * time.Second}}, 1},
		{"held 9.9 s", []step{{press: true}, {advance: 9900 * time.Millisecond}}, 0},
		{"released at 9 s", []step{{press: true}, {advance: 9 * time.Second}, {release: true}, {advance: 20 * time.Second}}, 0},
		{"bounce restarts the count", []step{{press: true}, {advance: 6 * time.Second}, {release: true}, {press: true}, {advance: 6 * time.Second}}, 0},
		{"repeated press while down is ignored", []step{{press: true}, {advance: 6 * time.Second}, {press: true}, {advance: 4 * time.Second}}, 1},
		{"held long fires once", []step{{press: true}, {advance: time.Minute}}, 1},
		{"two holds fire twice", []step{{press: true}, {advance: 10 * time.Second}, {release: true}, {press: true}, {advance: 10 * time.Second}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewMock()
			var fired atomic.Int32
			done := make(chan struct{}, 4)
			b := NewButtonHold(ResetHold, clk, func() { fired.Add(1); done <- struct{}{} })
			for _, s := range tc.steps {
				switch {
				case s.press:
					b.Press()
				case s.release:
					b.Release()
				default:
					clk.Add(s.advance)
				}
			}
			for range tc.fires {
				<-done // the mock clock runs AfterFunc on its own goroutine
			}
			clk.Add(time.Millisecond) // let any stray timer run
			if got := fired.Load(); got != tc.fires {
				t.Fatalf("fired %d times, want %d", got, tc.fires)
			}
		})
	}
}
