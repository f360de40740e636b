// Package sdnotify tells systemd how the daemon is doing — READY=1,
// STATUS=, WATCHDOG=1 and STOPPING=1 through go-systemd's daemon package —
// and picks the log format: one prefixed line per event under the journal,
// text otherwise.
//
// Without NOTIFY_SOCKET every call is a silent no-op, so the daemon runs the
// same under `make run`. It must not know what the daemon does: health is a
// check function supplied by the caller.
package sdnotify
