package channel

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Version is the envelope version this package writes and accepts.
const Version = 2

// Sizes of the fixed envelope fields.
const (
	IDSize        = ed25519.PublicKeySize // a channel ID is its write public key
	NonceSize     = 24                    // XChaCha20-Poly1305 nonce
	SignatureSize = ed25519.SignatureSize
	// headerSize is version(1) + channel(32) + timestamp(8) + nonce(24) + ciphertext length(4).
	headerSize = 1 + IDSize + 8 + NonceSize + 4
	// MaxCiphertext is the hard cap on an envelope's ciphertext: the largest
	// padding bucket plus the ephemeral-key slot and the AEAD tag.
	MaxCiphertext = 64*1024 + sealOverhead
	// MaxEnvelopeSize is the largest encoded envelope (MarshalBinary output).
	MaxEnvelopeSize = headerSize + MaxCiphertext + SignatureSize
)

// envelopeDomain separates write signatures from every other Ed25519
// signature made with the same key.
const envelopeDomain = "redpanda/v2/envelope\x00"

// ID identifies a channel: the channel's Ed25519 write public key.
type ID [IDSize]byte

// String returns the channel ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MessageID is SHA-256 of a signed envelope's binary encoding.
type MessageID [sha256.Size]byte

// String returns the message ID in lower-case hex.
func (m MessageID) String() string { return hex.EncodeToString(m[:]) }

// Envelope is what relays see and check: everything but the ciphertext is
// public, and the write signature covers all of it.
type Envelope struct {
	Version    uint8
	Channel    ID
	Timestamp  int64 // Unix milliseconds, set by the writer
	Nonce      [NonceSize]byte
	Ciphertext []byte
	Signature  [SignatureSize]byte
}

// ErrMalformed is returned for bytes that do not decode as an envelope.
var ErrMalformed = errors.New("channel: malformed envelope")

func (e *Envelope) appendSigned(b []byte) []byte {
	b = append(b, e.Version)
	b = append(b, e.Channel[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
	b = append(b, e.Nonce[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Ciphertext)))
	return append(b, e.Ciphertext...)
}

// signingInput is what the write key signs: a domain tag, then the
// canonical encoding.
func (e *Envelope) signingInput() []byte {
	b := make([]byte, 0, len(envelopeDomain)+headerSize+len(e.Ciphertext))
	b = append(b, envelopeDomain...)
	return e.appendSigned(b)
}

// MarshalBinary returns the canonical binary encoding of the signed
// envelope: the header, the ciphertext and the signature.
func (e *Envelope) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, headerSize+len(e.Ciphertext)+SignatureSize)
	b = e.appendSigned(b)
	return append(b, e.Signature[:]...), nil
}

// Size is the length of the envelope's binary encoding.
func (e *Envelope) Size() int { return headerSize + len(e.Ciphertext) + SignatureSize }

// ID returns the message ID: SHA-256 of the binary encoding.
func (e *Envelope) ID() MessageID {
	b, _ := e.MarshalBinary()
	return sha256.Sum256(b)
}

// UnmarshalEnvelope decodes the canonical binary encoding. It checks
// lengths before it allocates and copies the ciphertext, so the result does
// not alias b. It checks structure only; Validate checks the rest.
func UnmarshalEnvelope(b []byte) (*Envelope, error) {
	if len(b) < headerSize+SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", ErrMalformed, len(b), headerSize+SignatureSize)
	}
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte maximum", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	e := &Envelope{Version: b[0]}
	p := 1
	p += copy(e.Channel[:], b[p:])
	e.Timestamp = int64(binary.BigEndian.Uint64(b[p:]))
	p += 8
	p += copy(e.Nonce[:], b[p:])
	n := int(binary.BigEndian.Uint32(b[p:]))
	p += 4
	if n != len(b)-headerSize-SignatureSize {
		return nil, fmt.Errorf("%w: ciphertext length field says %d, envelope holds %d", ErrMalformed, n, len(b)-headerSize-SignatureSize)
	}
	e.Ciphertext = append([]byte(nil), b[p:p+n]...)
	p += n
	copy(e.Signature[:], b[p:])
	return e, nil
}

// ParseID parses a channel ID written by ID.String: 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if err := parseHex(id[:], s); err != nil {
		return ID{}, fmt.Errorf("channel ID: %w", err)
	}
	return id, nil
}

// ParseMessageID parses a message ID written by MessageID.String.
func ParseMessageID(s string) (MessageID, error) {
	var m MessageID
	if err := parseHex(m[:], s); err != nil {
		return MessageID{}, fmt.Errorf("message ID: %w", err)
	}
	return m, nil
}

func parseHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d characters", 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return err
	}
	return nil
}
