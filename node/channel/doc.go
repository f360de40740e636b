// Package channel holds a redPanda channel's keys and capabilities, the
// key strings people paste and scan, and the envelope: how a message is
// sealed, signed, opened and validated.
//
// It is pure: no I/O, no clock and no randomness of its own (both are
// passed in), so every result is reproducible in tests. It must not know
// about storage, networking, or anything above the protocol.
package channel
