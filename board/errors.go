package board

import "errors"

// Sentinel errors that callers branch on; returned errors wrap them with the
// file and the operation, so test with errors.Is.
var (
	// ErrNotSupported means this machine does not have the sensor or device
	// (no thermal zone, no Pi firmware, no LED): a normal state, not a fault.
	ErrNotSupported = errors.New("board: not supported on this machine")
	// ErrMalformed means a file exists but its contents cannot be parsed.
	ErrMalformed = errors.New("board: malformed value")
)
