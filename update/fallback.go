package update

import (
	"fmt"
	"time"
)

// Fallback is what homenode-fallback.service does after the commit step
// (homenode-commit.service) failed at this boot, whatever the failure:
// an unhealthy node, a crash, a timeout, a unit that could not start.
type Fallback struct {
	// Reboot: this boot is the trial of a new system that failed, so the
	// board reboots and the boot script takes the trial's next try or,
	// with none left, the previous system.
	Reboot bool
	// Why, in a sentence for the journal.
	Why string
}

// DecideFallback says whether a failed commit step reboots the board. It
// reboots only on the trial boot of a new system: the boot state (read
// without error) names the running slot as the one on trial. On any other
// boot, a freshly flashed card, a committed system, or a boot state it
// cannot read, rebooting would not bring back anything better and could
// loop for ever, so the board stays up and the failure is reported.
func DecideFallback(boot Boot, bootErr error, cur Slot) Fallback {
	switch {
	case bootErr != nil:
		return Fallback{Why: fmt.Sprintf("the boot state is unreadable (%v)", bootErr)}
	case cur == "":
		return Fallback{Why: "the running slot is unknown"}
	case boot.Trial != cur:
		if boot.Trial != "" && boot.Left[boot.Trial] > 0 {
			return Fallback{Why: fmt.Sprintf("slot %s is committed (the update in slot %s is not booted yet)", cur, boot.Trial)}
		}
		if boot.Trial != "" {
			return Fallback{Why: fmt.Sprintf("slot %s is committed (the update in slot %s was given up)", cur, boot.Trial)}
		}
		return Fallback{Why: fmt.Sprintf("slot %s is committed, not on trial", cur)}
	}
	next, _ := boot.Choose()
	return Fallback{Reboot: true, Why: fmt.Sprintf("the trial of slot %s failed: rebooting into slot %s (%s)", cur, next, boot)}
}

// Fallback reads the boot state and decides (DecideFallback).
func (s *System) Fallback() Fallback {
	boot, _, err := s.LoadBoot()
	return DecideFallback(boot, err, s.Current)
}

// CommitFailure is a failure of the commit step on a boot that was not a
// trial: the board stayed up, and the owner is told.
type CommitFailure struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// RecordCommitFailure keeps a failure of the commit step in state.json,
// for the status page and `homenode status`, until a commit succeeds.
func (d Dir) RecordCommitFailure(msg string) error {
	rec, err := d.ReadRecord()
	if err != nil {
		return err // the next commit rewrites it; the journal has the failure
	}
	rec.CommitFailed = &CommitFailure{At: time.Now().UTC(), Error: msg}
	return d.WriteRecord(rec)
}
