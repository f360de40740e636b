package store

import "errors"

// Sentinel errors that callers branch on; test with errors.Is.
var (
	// ErrNotFound: no such message or record.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: the message is already stored; nothing changed.
	ErrExists = errors.New("store: message already stored")
	// ErrQuotaExceeded: storing the message would exceed the channel's or
	// the node's byte budget; what is stored stays readable.
	ErrQuotaExceeded = errors.New("store: quota exceeded")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt: the database file is not a readable store. It is never
	// replaced automatically.
	ErrCorrupt = errors.New("store: database file is corrupt or not a message store")
	// ErrLocked: another process holds the database file.
	ErrLocked = errors.New("store: database file is locked by another process")
	// ErrDiskFull: the disk has no room for the write; nothing stored
	// before it was lost.
	ErrDiskFull = errors.New("store: disk full")
	// ErrClockUntrusted: Sweep refused to expire messages by a clock that
	// is not synchronised yet (Options.ClockTrusted).
	ErrClockUntrusted = errors.New("store: clock not synchronised; retention sweep postponed")
)
