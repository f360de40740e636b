package client

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// Finding friends by phone number or e-mail address (paper §4.3): an
// address never leaves the device in clear; what is compared is a slow,
// salted, application-specific hash of its normalised form, so the same
// person's number written two ways hashes the same, a hash from another
// application is useless here, and every guess costs an Argon2id run.
// docs/CONTACTS.md says what a brute force of the number space costs.

// ContactHashParams are the Argon2id parameters of contact hashes. They
// are part of the protocol: every client must use the same ones.
var ContactHashParams = BackupParams{Time: 2, MemoryKiB: 32 << 10, Threads: 1}

// contactSalt makes the hash this application's own: a table computed
// for another application, or for plain SHA-256 of numbers, does not
// apply. It is fixed, not per user, because two people must arrive at the
// same hash for the same number.
var contactSalt = func() []byte {
	h := sha256.Sum256([]byte("redpanda/v2/contact-hash"))
	return h[:16]
}()

// ErrBadContact: a phone number or e-mail address that cannot be
// normalised.
var ErrBadContact = errors.New("client: bad contact address")

// NormalizePhone returns number in E.164 form ("+" and 8 to 15 digits).
// Spaces, dashes, dots, slashes and parentheses are dropped; "00" is the
// international prefix; a number with neither "+" nor "00" is national:
// its leading trunk "0" is dropped and defaultCC (the country calling
// code, e.g. "49") put in front.
func NormalizePhone(number, defaultCC string) (string, error) {
	s := strings.TrimSpace(number)
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '/' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", fmt.Errorf("%w: %q has %q, not a phone number character", ErrBadContact, number, r)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "+"):
		d = d[1:]
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "0"):
		if !isDigits(defaultCC) || len(defaultCC) > 3 || defaultCC == "" || defaultCC[0] == '0' {
			return "", fmt.Errorf("%w: %q is a national number and the country calling code %q is not valid (1 to 3 digits, e.g. 49)", ErrBadContact, number, defaultCC)
		}
		d = defaultCC + d[1:]
	default:
		return "", fmt.Errorf("%w: %q starts with neither +, 00 nor a trunk 0", ErrBadContact, number)
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", fmt.Errorf("%w: %q has %d digits after the country code prefix, E.164 allows 8 to 15 and no leading 0", ErrBadContact, number, len(d))
	}
	return "+" + d, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// NormalizeEmail lower-cases and trims an address and checks its shape.
// Provider-specific aliases (dots, "+tags") are left alone: they may be
// different mailboxes elsewhere.
func NormalizeEmail(addr string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || !strings.Contains(s[at:], ".") || len(s) > 254 {
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrBadContact, addr)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "", fmt.Errorf("%w: %q has a space or an unprintable character", ErrBadContact, addr)
		}
	}
	return s, nil
}

// ContactHash hashes a normalised address (from NormalizePhone or
// NormalizeEmail; the kind is part of the input, so a number and an
// address never collide). It is slow on purpose: ~0.1 s and 32 MiB.
func ContactHash(normalized string) []byte {
	kind := "email:"
	if strings.HasPrefix(normalized, "+") {
		kind = "tel:"
	}
	p := ContactHashParams
	return argon2.IDKey([]byte(kind+normalized), contactSalt, p.Time, p.MemoryKiB, p.Threads, 32)
}
