package status

import (
	"fmt"
	"time"
)

// Update is the firmware update part of the report (the A/B SD-card
// image; docs/UPDATES.md). Nil when the node is not on that image.
type Update struct {
	// Slot is the root slot running, "A" or "B".
	Slot string `json:"slot"`
	// State is what the updater is doing: "idle", "downloading",
	// "receiving" (from the owner's phone), "verifying", "writing", "checking", "rebooting", "on trial", or
	// "refused" / "failed" for an attempt that just ended, or "not
	// committed" when the commit step failed at a boot that was not a
	// trial (the board stayed up on the running version; Detail says why).
	State string `json:"state"`
	// Version is the version being fetched or installed.
	Version string `json:"version,omitempty"`
	// Percent of the current step.
	Percent int `json:"percent,omitempty"`
	// Detail says why, for refused and failed.
	Detail string `json:"detail,omitempty"`
	// Last is how the last update ended, in words ("updated to 1.2-1
	// (from 1.1-1)", "update to 1.2-1 failed after 1 try, back on
	// 1.1-1"), and when.
	Last   string    `json:"last,omitempty"`
	LastAt time.Time `json:"last_at,omitempty"`
	// Feed is the release feed the owner set; Available the newest
	// version it lists for this board, when newer than the running one.
	Feed      string    `json:"feed,omitempty"`
	Available string    `json:"available,omitempty"`
	NextCheck time.Time `json:"next_check,omitempty"`
	// DevKeys: the image trusts the development release key, whose
	// private key is public (a development image).
	DevKeys bool `json:"dev_keys,omitempty"`
}

// Busy reports whether an update is being fetched or installed.
func (u *Update) Busy() bool {
	if u == nil {
		return false
	}
	switch u.State {
	case "downloading", "receiving", "verifying", "writing", "checking", "rebooting":
		return true
	}
	return false
}

// Line is the update in one short phrase ("writing 1.2-1 45%").
func (u *Update) Line() string {
	if u == nil {
		return ""
	}
	switch {
	case u.Busy() && u.Percent > 0:
		return fmt.Sprintf("update %s %s %d%%", u.State, u.Version, u.Percent)
	case u.Busy():
		return fmt.Sprintf("update %s %s", u.State, u.Version)
	case u.State == "refused" || u.State == "failed":
		return fmt.Sprintf("update %s %s: %s", u.Version, u.State, u.Detail)
	case u.State == "not committed":
		return fmt.Sprintf("%s not committed at boot (still running it): %s", u.Version, u.Detail)
	case u.State == "on trial":
		return fmt.Sprintf("update %s on trial", u.Version)
	case u.Available != "":
		return "update " + u.Available + " available"
	}
	return ""
}
