package channel

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// LegacyKey is a parsed key string of the paper's 1.0 implementation: a
// secp256k1 private key ("pr") or compressed public key ("pu"). v2 does
// not speak 1.0; these are imported and shown, never used to sign.
type LegacyKey struct {
	Prefix  string // PrefixLegacyPrivate or PrefixLegacyPublic
	Private []byte // 32 bytes for "pr", nil for "pu"
	Public  []byte // 33-byte compressed public key (computed for "pr")
}

// ParseLegacy parses and validates a "pr" or "pu" string: checksum, length,
// a private key in [1, n-1], a public key on the curve.
func ParseLegacy(s string) (*LegacyKey, error) {
	f, payload, err := decodeKeyString(s)
	if err != nil {
		return nil, err
	}
	if f.prefix != PrefixLegacyPrivate && f.prefix != PrefixLegacyPublic {
		return nil, fmt.Errorf("%w: a %s is not a legacy key string", ErrUnknownPrefix, f.what)
	}
	return legacyFromPayload(f.prefix, payload)
}

func legacyFromPayload(prefix string, payload []byte) (*LegacyKey, error) {
	l := &LegacyKey{Prefix: prefix}
	switch prefix {
	case PrefixLegacyPrivate:
		var d secp256k1.ModNScalar
		if overflow := d.SetByteSlice(payload); overflow || d.IsZero() {
			return nil, fmt.Errorf("%w: legacy pr: private key is not in [1, n-1] of secp256k1", ErrBadKey)
		}
		l.Private = append([]byte(nil), payload...)
		l.Public = secp256k1.NewPrivateKey(&d).PubKey().SerializeCompressed()
	case PrefixLegacyPublic:
		pub, err := secp256k1.ParsePubKey(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: legacy pu: not a compressed secp256k1 public key: %v", ErrBadKey, err)
		}
		l.Public = pub.SerializeCompressed()
	}
	return l, nil
}

// String returns the key's own legacy string.
func (l *LegacyKey) String() string {
	if l.Prefix == PrefixLegacyPrivate {
		return encodeKeyString(PrefixLegacyPrivate, l.Private, checksumLegacy)
	}
	return l.PublicString()
}

// PublicString returns the "pu" string of the public key.
func (l *LegacyKey) PublicString() string {
	return encodeKeyString(PrefixLegacyPublic, l.Public, checksumLegacy)
}
