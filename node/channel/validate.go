package channel

import (
	"fmt"
	"time"
)

// Defaults for a zero Policy.
const (
	DefaultMaxAge  = 7 * 24 * time.Hour
	DefaultMaxSkew = 5 * time.Minute
)

// Policy configures Validate.
type Policy struct {
	MaxAge      time.Duration // default 7*24h when zero
	MaxSkew     time.Duration // allowed future skew, default 5 min when zero
	IgnoreClock bool          // the node's clock is not trusted (no RTC, not yet synced): skip the time checks
}

// Validate enforces the relay rule's envelope part: version, size limits,
// timestamp window and write signature, cheapest check first. It is pure:
// the caller passes now. It returns ErrMalformed, ErrBadVersion,
// ErrTooLarge, ErrExpired, ErrFromFuture or ErrBadSignature, wrapped with
// detail. It needs no key: relays run it without being members.
func Validate(e *Envelope, now time.Time, p Policy) error {
	if e == nil {
		return fmt.Errorf("channel.Validate: %w: nil envelope", ErrMalformed)
	}
	if err := checkStructure(e); err != nil {
		return fmt.Errorf("channel.Validate: %w", err)
	}
	if !p.IgnoreClock {
		maxAge, maxSkew := p.MaxAge, p.MaxSkew
		if maxAge == 0 {
			maxAge = DefaultMaxAge
		}
		if maxSkew == 0 {
			maxSkew = DefaultMaxSkew
		}
		ts := time.UnixMilli(e.Timestamp)
		if oldest := now.Add(-maxAge); ts.Before(oldest) {
			return fmt.Errorf("channel.Validate: %w: written %s, older than %s", ErrExpired, ts.UTC().Format(time.RFC3339Nano), maxAge)
		}
		if latest := now.Add(maxSkew); ts.After(latest) {
			return fmt.Errorf("channel.Validate: %w: written %s, %s ahead of now (allowed skew %s)", ErrFromFuture, ts.UTC().Format(time.RFC3339Nano), ts.Sub(now), maxSkew)
		}
	}
	if !verifySig(e.Channel[:], e.signingInput(), e.Signature[:]) {
		return fmt.Errorf("channel.Validate: %w for channel %s", ErrBadSignature, e.Channel)
	}
	return nil
}

// checkStructure checks version and ciphertext size: only sizes Seal can
// produce pass, so padding cannot be skipped by a sloppy writer.
func checkStructure(e *Envelope) error {
	if e.Version != Version {
		return fmt.Errorf("%w %d (want %d)", ErrBadVersion, e.Version, Version)
	}
	n := len(e.Ciphertext)
	if n > MaxCiphertext {
		return fmt.Errorf("%w: ciphertext of %d bytes is over the %d-byte maximum", ErrTooLarge, n, MaxCiphertext)
	}
	if !validCiphertextLen(n) {
		return fmt.Errorf("%w: ciphertext of %d bytes is not a padding bucket", ErrMalformed, n)
	}
	return nil
}
