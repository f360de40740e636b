package provisioning

import (
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// ResetHold is how long the board's button must be held for a factory
// reset.
const ResetHold = 10 * time.Second

// ButtonHold fires once when a button stays pressed for the hold time.
// The board package feeds it Press and Release (debounced or not: a
// release always restarts the count); the clock is injectable for tests.
type ButtonHold struct {
	hold  time.Duration
	clock clock.Clock
	fire  func()

	mu    sync.Mutex
	timer *clock.Timer
	gen   uint64 // invalidates a timer that fires after its release
}

// NewButtonHold returns a detector that calls fire (on its own goroutine)
// after hold of continuous press. A nil clk means the wall clock.
func NewButtonHold(hold time.Duration, clk clock.Clock, fire func()) *ButtonHold {
	if clk == nil {
		clk = clock.New()
	}
	return &ButtonHold{hold: hold, clock: clk, fire: fire}
}

// Press reports the button went down; repeated presses while down are
// ignored.
func (b *ButtonHold) Press() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		return
	}
	b.gen++
	gen := b.gen
	b.timer = b.clock.AfterFunc(b.hold, func() {
		b.mu.Lock()
		ok := b.gen == gen && b.timer != nil
		b.mu.Unlock()
		if ok {
			b.fire()
		}
	})
}

// Release reports the button went up; a hold in progress is abandoned.
func (b *ButtonHold) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
		b.gen++
	}
}
