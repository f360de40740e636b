package channel

import "errors"

// Sentinel errors that callers branch on. Wrapped errors add detail; test
// with errors.Is.
var (
	ErrBadVersion   = errors.New("channel: unsupported envelope version")
	ErrTooLarge     = errors.New("channel: envelope too large")
	ErrExpired      = errors.New("channel: envelope older than the retention window")
	ErrFromFuture   = errors.New("channel: envelope timestamp too far in the future")
	ErrBadSignature = errors.New("channel: bad write signature")
	ErrCannotRead   = errors.New("channel: capability cannot read this channel")
	ErrCannotWrite  = errors.New("channel: capability cannot write this channel")
	ErrDecrypt      = errors.New("channel: ciphertext does not decrypt")
	ErrBadAuthor    = errors.New("channel: bad author signature")
)

// ErrWrongChannel is returned by Open for an envelope of another channel.
var ErrWrongChannel = errors.New("channel: envelope belongs to another channel")
