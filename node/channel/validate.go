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
	if err := checkUnsigned("channel.Validate", e, now, p); err != nil {
		return err
	}
	if !verifySig(e.Channel[:], e.signingInput(), e.Signature[:]) {
		return signatureError(e)
	}
	return nil
}

// Revalidate is Validate without the signature check, for an envelope
// whose ID the caller already holds, validated: the ID is a hash of the
// signed bytes, so the signature cannot have changed, while the time
// window can have. It returns the errors Validate would, so a copy of a
// stored message is refused for the same reason as before, one signature
// check cheaper.
func Revalidate(e *Envelope, now time.Time, p Policy) error {
	return checkUnsigned("channel.Revalidate", e, now, p)
}

// ValidateUnsigned is every check of Validate but the signature, with
// Validate's errors, for a caller that checks the write signature itself
// afterwards, in a batch (BatchVerifier.VerifySignatures): the two
// together are Validate, in its order.
func ValidateUnsigned(e *Envelope, now time.Time, p Policy) error {
	return checkUnsigned("channel.Validate", e, now, p)
}

// checkUnsigned is every check of Validate but the signature, cheapest
// first.
func checkUnsigned(op string, e *Envelope, now time.Time, p Policy) error {
	if e == nil {
		return fmt.Errorf("%s: %w: nil envelope", op, ErrMalformed)
	}
	if err := checkStructure(e); err != nil {
		return fmt.Errorf("%s: %w", op, err)
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
			return fmt.Errorf("%s: %w: written %s, older than %s", op, ErrExpired, ts.UTC().Format(time.RFC3339Nano), maxAge)
		}
		if latest := now.Add(maxSkew); ts.After(latest) {
			return fmt.Errorf("%s: %w: written %s, %s ahead of now (allowed skew %s)", op, ErrFromFuture, ts.UTC().Format(time.RFC3339Nano), ts.Sub(now), maxSkew)
		}
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
