package health

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The node must not expire or reject messages by a clock it cannot trust:
// a Pi has no real-time clock and boots at the last saved time (or 1970)
// until NTP catches up. Judging a message's timestamp against such a clock
// would drop good messages as "too old" or "from the future", and the
// 7-day expiry would delete a week's history in one step when the clock
// jumps. So, until ClockSynced is true, the node accepts timestamps
// without the window check, keeps messages instead of expiring them, and
// says so on the status page; it re-checks, and applies both rules, once
// the clock is synchronised.

// ClockUnsyncedMessage is the status-page sentence while the clock is
// untrusted.
const ClockUnsyncedMessage = "The clock has not been set from the network yet: " +
	"messages are not checked or expired by time until it is."

// TimesyncdFlag is the file systemd-timesyncd creates once it has
// synchronised the clock, relative to the root.
const TimesyncdFlag = "run/systemd/timesync/synchronized"

// ClockState is whether the clock is trusted and who says so.
type ClockState struct {
	Synced bool
	Source string // "systemd-timesyncd", "kernel", or "" when not synced
	Err    error  // why the kernel could not be asked, if it could not
}

// Clock decides whether the system clock is trustworthy. Both inputs are
// injectable for tests.
type Clock struct {
	Root string // "/" when empty
	// Kernel asks the kernel; KernelSynced when nil.
	Kernel func() (bool, error)
}

// DefaultClock checks the running system.
var DefaultClock = Clock{}

// ClockSynced reports whether the running system's clock is synchronised.
func ClockSynced() bool { return DefaultClock.State().Synced }

// Synced reports whether c's clock is synchronised.
func (c Clock) Synced() bool { return c.State().Synced }

// State reports whether the clock is synchronised: true if timesyncd's flag
// file exists, or else if the kernel says so.
func (c Clock) State() ClockState {
	root := c.Root
	if root == "" {
		root = "/"
	}
	// Any stat failure, not only absence, falls through to the kernel:
	// an unreadable flag is no evidence of a good clock.
	if _, err := os.Stat(filepath.Join(root, TimesyncdFlag)); err == nil {
		return ClockState{Synced: true, Source: "systemd-timesyncd"}
	}
	kernel := c.Kernel
	if kernel == nil {
		kernel = KernelSynced
	}
	ok, err := kernel()
	if err != nil {
		return ClockState{Err: err}
	}
	if ok {
		return ClockState{Synced: true, Source: "kernel"}
	}
	return ClockState{}
}

// KernelSynced asks the kernel with adjtimex(2) (read-only: no modes set):
// synchronised when STA_UNSYNC is clear and the state is not TIME_ERROR.
// An NTP daemon (chrony, ntpd, timesyncd) clears STA_UNSYNC once it has
// disciplined the clock.
func KernelSynced() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("health.KernelSynced: adjtimex: %w", err)
	}
	return kernelSynced(state, tx.Status), nil
}

func kernelSynced(state int, status int32) bool {
	return state != unix.TIME_ERROR && status&unix.STA_UNSYNC == 0
}
