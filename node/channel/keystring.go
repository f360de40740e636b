package channel

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mr-tron/base58"
)

// Key string prefixes. v2 prefixes start with "rp" and legacy ones with
// "p", so no string is both; each v2 prefix names one capability, and the
// payload lengths differ too, so a mistyped prefix never yields a valid key.
const (
	PrefixFull     = "rpf" // v2 full: root secret (32 bytes)
	PrefixRead     = "rpr" // v2 read-only: read key (32) || write public key (32)
	PrefixWrite    = "rpw" // v2 write-only: write seed (32) || sealing public key (32)
	PrefixIdentity = "rpi" // v2 author identity public key (32)

	PrefixLegacyPrivate = "pr" // paper 1.0: secp256k1 private key (32)
	PrefixLegacyPublic  = "pu" // paper 1.0: compressed secp256k1 public key (33)
)

// Checksum lengths: v2 keeps Bitcoin's 4 bytes, the paper's 1.0 used 8.
const (
	checksumV2     = 4
	checksumLegacy = 8
)

// MaxHintBytes bounds the node hint a channel key string (rpf, rpr, rpw)
// may carry after its key: opaque bytes here (package node/hint reads
// them), covered by the same checksum. Strings without a hint are the
// same as before hints existed.
const MaxHintBytes = 160

// maxKeyString bounds the input before Base58 decoding (quadratic in the
// length): the longest valid string, a read-only key with the largest
// hint, is ~315 characters.
const maxKeyString = 320

// Errors from key string parsing; each is wrapped with what exactly is wrong.
var (
	ErrUnknownPrefix    = errors.New("channel: key string: unknown prefix")
	ErrInvalidCharacter = errors.New("channel: key string: invalid character")
	ErrChecksum         = errors.New("channel: key string: checksum mismatch")
	ErrKeyLength        = errors.New("channel: key string: wrong length")
	ErrBadKey           = errors.New("channel: key string: not a valid key")
)

// keyFormat describes one prefix.
type keyFormat struct {
	prefix   string
	payload  int // bytes before the checksum (and before a hint)
	checksum int
	what     string
	hint     bool // may carry up to MaxHintBytes of node hint
}

var keyFormats = []keyFormat{
	{PrefixFull, SecretSize, checksumV2, "v2 full key", true},
	{PrefixRead, 2 * SecretSize, checksumV2, "v2 read-only key", true},
	{PrefixWrite, 2 * SecretSize, checksumV2, "v2 write-only key", true},
	{PrefixIdentity, ed25519.PublicKeySize, checksumV2, "v2 identity", false},
	{PrefixLegacyPrivate, 32, checksumLegacy, "legacy pr (secp256k1 private key)", false},
	{PrefixLegacyPublic, 33, checksumLegacy, "legacy pu (secp256k1 public key)", false},
}

// encodeKeyString returns prefix + Base58(payload || checksum).
func encodeKeyString(prefix string, payload []byte, checksumLen int) string {
	b := make([]byte, 0, len(payload)+checksumLen)
	b = append(b, payload...)
	sum := checksum(prefix, payload)
	b = append(b, sum[:checksumLen]...)
	return prefix + base58.Encode(b)
}

// checksum is SHA-256(SHA-256(prefix || payload)).
func checksum(prefix string, payload []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(prefix))
	h.Write(payload)
	return sha256.Sum256(h.Sum(nil))
}

// decodeKeyString checks s strictly and returns its format and payload.
// Positions in errors count characters from 1, prefix included, the way a
// person counts on the screen.
func decodeKeyString(s string) (keyFormat, []byte, error) {
	f, payload, hint, err := decodeHinted(s)
	if err == nil && hint != nil {
		return f, nil, fmt.Errorf("%w: %s with %d bytes more than a key", ErrKeyLength, f.what, len(hint))
	}
	return f, payload, err
}

// decodeHinted is decodeKeyString that also takes, for channel keys, the
// hint bytes between the key and the checksum (nil when there are none).
func decodeHinted(s string) (keyFormat, []byte, []byte, error) {
	f, payload, err := decodeRaw(s)
	if err != nil {
		return f, nil, nil, err
	}
	if len(payload) == f.payload {
		return f, payload, nil, nil
	}
	return f, payload[:f.payload], payload[f.payload:], nil
}

// decodeRaw checks s strictly and returns its format and everything
// before the checksum.
func decodeRaw(s string) (keyFormat, []byte, error) {
	if len(s) > maxKeyString {
		return keyFormat{}, nil, fmt.Errorf("%w: %d characters, longer than any key string", ErrKeyLength, utf8.RuneCountInString(s))
	}
	var f keyFormat
	found := false
	for _, kf := range keyFormats {
		if strings.HasPrefix(s, kf.prefix) {
			f, found = kf, true
			break
		}
	}
	if !found {
		p := s
		if len(p) > 3 {
			p = p[:3]
		}
		return keyFormat{}, nil, fmt.Errorf("%w %q (want %s, %s or %s; or legacy %s, %s)", ErrUnknownPrefix, p,
			PrefixFull, PrefixRead, PrefixWrite, PrefixLegacyPrivate, PrefixLegacyPublic)
	}
	body := s[len(f.prefix):]
	pos := utf8.RuneCountInString(f.prefix)
	for _, r := range body {
		pos++
		if r >= utf8.RuneSelf || !strings.ContainsRune(base58Alphabet, r) {
			return f, nil, fmt.Errorf("%w %q at position %d (not in the Base58 alphabet)", ErrInvalidCharacter, r, pos)
		}
	}
	raw, err := base58.Decode(body)
	if err != nil { // unreachable after the alphabet check; kept for safety
		return f, nil, fmt.Errorf("%w: %v", ErrInvalidCharacter, err)
	}
	least, most := f.payload+f.checksum, f.payload+f.checksum
	if f.hint {
		most += MaxHintBytes
	}
	if len(raw) < least || len(raw) > most {
		if most > least {
			return f, nil, fmt.Errorf("%w: %s decodes to %d bytes, want %d to %d", ErrKeyLength, f.what, len(raw), least, most)
		}
		return f, nil, fmt.Errorf("%w: %s decodes to %d bytes, want %d", ErrKeyLength, f.what, len(raw), least)
	}
	payload, sum := raw[:len(raw)-f.checksum], raw[len(raw)-f.checksum:]
	want := checksum(f.prefix, payload)
	if !bytes.Equal(sum, want[:f.checksum]) {
		return f, nil, fmt.Errorf("%w: %s: the string is mistyped or damaged", ErrChecksum, f.what)
	}
	return f, payload, nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// String returns the key's v2 key string.
func (k *Key) String() string {
	switch k.capability {
	case CapabilityFull:
		return encodeKeyString(PrefixFull, k.root[:], checksumV2)
	case CapabilityRead:
		return encodeKeyString(PrefixRead, append(append([]byte(nil), k.readKey[:]...), k.id[:]...), checksumV2)
	case CapabilityWrite:
		return encodeKeyString(PrefixWrite, append(k.write.Seed(), k.sealPub.Bytes()...), checksumV2)
	}
	return "invalid key"
}

// StringWithHint returns the key's v2 key string carrying hint, a node
// hint (package node/hint) of at most MaxHintBytes, between the key and
// the checksum. An empty hint gives String.
func (k *Key) StringWithHint(hint []byte) (string, error) {
	if len(hint) == 0 {
		return k.String(), nil
	}
	if len(hint) > MaxHintBytes {
		return "", fmt.Errorf("channel: key string: hint of %d bytes, at most %d", len(hint), MaxHintBytes)
	}
	var prefix string
	var payload []byte
	switch k.capability {
	case CapabilityFull:
		prefix, payload = PrefixFull, append([]byte(nil), k.root[:]...)
	case CapabilityRead:
		prefix, payload = PrefixRead, append(append([]byte(nil), k.readKey[:]...), k.id[:]...)
	case CapabilityWrite:
		prefix, payload = PrefixWrite, append(k.write.Seed(), k.sealPub.Bytes()...)
	default:
		return "", fmt.Errorf("%w: invalid key", ErrBadKey)
	}
	return encodeKeyString(prefix, append(payload, hint...), checksumV2), nil
}

// ParseKey parses a v2 key string of any capability, or a legacy "pr"
// string, which becomes the full capability of the v2 channel whose root
// secret is the 32-byte private key. A legacy "pu" string is a public key
// only and grants nothing: inspect it with ParseLegacy. A node hint the
// string carries is ignored (ParseKeyHint returns it).
func ParseKey(s string) (*Key, error) {
	k, _, err := ParseKeyHint(s)
	return k, err
}

// ParseKeyHint is ParseKey that also returns the node hint the string
// carries after the key (nil when it has none), unread: it is checked by
// the checksum only, and package node/hint decodes it.
func ParseKeyHint(s string) (*Key, []byte, error) {
	f, payload, hint, err := decodeHinted(s)
	if err != nil {
		return nil, nil, err
	}
	k, err := parseKeyPayload(f, payload)
	if err != nil {
		return nil, nil, err
	}
	return k, hint, nil
}

func parseKeyPayload(f keyFormat, payload []byte) (*Key, error) {
	switch f.prefix {
	case PrefixFull:
		return KeyFromSecret(payload)
	case PrefixRead:
		readKey := new([SecretSize]byte)
		copy(readKey[:], payload[:SecretSize])
		return readOnlyKey(readKey, payload[SecretSize:])
	case PrefixWrite:
		k, err := writeOnlyKey(payload[:SecretSize], payload[SecretSize:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		return k, nil
	case PrefixLegacyPrivate:
		if _, err := legacyFromPayload(f.prefix, payload); err != nil {
			return nil, err
		}
		return KeyFromSecret(payload)
	case PrefixLegacyPublic:
		return nil, fmt.Errorf("%w: a legacy pu string is a public key and grants no access to a channel", ErrBadKey)
	}
	return nil, fmt.Errorf("%w: a %s is not a channel key", ErrBadKey, f.what)
}
