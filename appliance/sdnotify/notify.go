package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd that start-up is complete (Type=notify).
func Ready() error { return send(daemon.SdNotifyReady) }

// Stopping tells systemd that shutdown has begun.
func Stopping() error { return send(daemon.SdNotifyStopping) }

// Status sets the line `systemctl status` shows. Newlines would end the
// assignment, so they become spaces.
func Status(line string) error {
	return send("STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(line))
}

// ExtendTimeout asks systemd for d more time to finish starting (or
// stopping) from now: for start-up work whose length depends on the data,
// such as converting an older message store, which must not be killed by
// TimeoutStartSec while it is making progress.
func ExtendTimeout(d time.Duration) error {
	return send(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds()))
}

func send(state string) error {
	// (false, nil) means no NOTIFY_SOCKET: not under systemd, nothing to do.
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", strings.SplitN(state, "=", 2)[0], err)
	}
	return nil
}

// HealthCheck reports whether the daemon's own loops are making progress.
// It must fail (or block until ctx ends) when they are wedged.
type HealthCheck func(ctx context.Context) error

// WatchdogInterval is systemd's WatchdogSec for this process, or 0 when the
// watchdog is off (no WATCHDOG_USEC, or it is meant for another PID).
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: watchdog settings: %w", err)
	}
	return d, nil
}

// RunWatchdog pings WATCHDOG=1 at half the watchdog interval, but only after
// check passes; each check gets half an interval to answer. When the check
// fails it logs why and stops pinging, so systemd restarts a wedged daemon;
// if the check passes again before systemd acts, pinging resumes. It returns
// nil when ctx ends or at once when the watchdog is off.
func RunWatchdog(ctx context.Context, check HealthCheck, log *slog.Logger) error {
	interval, err := WatchdogInterval()
	if err != nil || interval == 0 {
		return err
	}
	period := interval / 2
	log.Info("watchdog enabled", "interval", interval, "ping_every", period)
	t := time.NewTicker(period)
	defer t.Stop()
	healthy := true
	var c checker
	for {
		if err := c.run(ctx, check, period); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if healthy {
				log.Warn("watchdog: health check failed; no longer pinging systemd", "err", err)
			}
			healthy = false
		} else {
			if !healthy {
				log.Info("watchdog: health check passes again; pinging resumed")
			}
			healthy = true
			if err := send(daemon.SdNotifyWatchdog); err != nil {
				log.Warn("watchdog: ping failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// checker runs a check with a timeout. A wedged check may ignore its ctx, so
// it runs aside and the watchdog itself never wedges; while it is still
// outstanding no second one is started, so a stuck check costs one
// goroutine, not one per tick.
type checker struct {
	inflight chan error
}

func (c *checker) run(ctx context.Context, check HealthCheck, timeout time.Duration) error {
	if c.inflight == nil {
		c.inflight = make(chan error, 1)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		go func(done chan<- error) {
			defer cancel()
			done <- check(cctx)
		}(c.inflight)
	}
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	select {
	case err := <-c.inflight:
		c.inflight = nil
		return err
	case <-wait.C:
		return fmt.Errorf("health check did not answer within %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
