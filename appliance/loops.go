package appliance

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/status"
)

// TestWedgeEnv names a file that, while it exists, makes the main loop
// stop beating so the watchdog check fails: a hook for the test that
// proves WATCHDOG=1 stops when the node is wedged. Only tests set it.
const TestWedgeEnv = "REDPANDA_TEST_WEDGE_FILE"

// Intervals of the daemon's own loops.
const (
	beatInterval   = time.Second
	beatStale      = 5 * beatInterval
	statusInterval = 10 * time.Second
	clockInterval  = 5 * time.Second
)

// every runs f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// mainLoop is the daemon's heartbeat: the watchdog pings only while it
// beats, so a wedged process is restarted by systemd.
func (a *Appliance) mainLoop(ctx context.Context) {
	wedge := os.Getenv(TestWedgeEnv)
	every(ctx, beatInterval, func() {
		if wedge != "" {
			if _, err := os.Stat(wedge); err == nil {
				return // wedged on purpose: no beat
			}
		}
		a.beat.Store(time.Now().UnixNano())
	})
}

// healthy is the watchdog's and /healthz's check: the main loop beats and
// the store answers.
func (a *Appliance) healthy(ctx context.Context) error {
	if age := time.Since(time.Unix(0, a.beat.Load())); age > beatStale {
		return fmt.Errorf("main loop has not run for %s", age.Round(time.Second))
	}
	if _, err := a.node.Store.Stats(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return ctx.Err()
}

func (a *Appliance) statusLoop(ctx context.Context) {
	every(ctx, statusInterval, func() { a.pushStatus(ctx) })
}

// pushStatus sends systemd the one-line status.
func (a *Appliance) pushStatus(ctx context.Context) {
	r, err := a.Report(ctx)
	if err != nil {
		a.log.Warn("status report", "err", err)
		return
	}
	sdnotify.Status(status.StatusLine(r))
	a.logWarnings(r.Warnings)
}

// logWarnings writes each warning to the journal once when it appears and
// once when it clears.
func (a *Appliance) logWarnings(ws []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := map[string]bool{}
	for _, w := range ws {
		now[w] = true
		if !a.warned[w] {
			a.log.Warn(w)
		}
	}
	for w := range a.warned {
		if !now[w] {
			a.log.Info("cleared: " + w)
		}
	}
	a.warned = now
}

func (a *Appliance) refreshClock() bool {
	ok := a.clock.Synced()
	return a.clockOK.Swap(ok) != ok
}

// clockLoop re-checks whether the clock is synchronised and says so when
// it changes: until it is, messages are not rejected or expired by time.
func (a *Appliance) clockLoop(ctx context.Context) {
	a.logClock()
	every(ctx, clockInterval, func() {
		if a.refreshClock() {
			a.logClock()
		}
	})
}

func (a *Appliance) logClock() {
	if a.clockOK.Load() {
		a.log.Info("clock synchronised: message timestamps are checked")
	} else {
		a.log.Warn("clock not synchronised: message timestamps are not trusted, nothing is rejected or expired by time until it is")
	}
}
