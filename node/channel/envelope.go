package channel

import (
	"bytes"
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
//
// An envelope made by Seal, UnmarshalEnvelope or Clone keeps its canonical
// encoding and message ID, computed once: ID, MarshalBinary, Validate and
// Open use them instead of encoding and hashing again. They are used only
// while the exported fields still encode to exactly those bytes (checked
// byte for byte, far cheaper than encoding and hashing), so changing a
// field is always safe: the envelope is then encoded afresh, and a
// tampered one fails its signature check as before. The kept bytes are
// written once, before the envelope is returned, and never shared.
type Envelope struct {
	Version    uint8
	Channel    ID
	Timestamp  int64 // Unix milliseconds, set by the writer
	Nonce      [NonceSize]byte
	Ciphertext []byte
	Signature  [SignatureSize]byte

	signed []byte    // envelopeDomain || canonical encoding, or nil
	id     MessageID // SHA-256 of the canonical encoding in signed
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

// kept returns the canonical encoding kept since the envelope was made,
// or nil when there is none or a field has changed since.
func (e *Envelope) kept() []byte {
	if e.signed == nil {
		return nil
	}
	b := e.signed[len(envelopeDomain):]
	n := len(e.Ciphertext)
	if len(b) != headerSize+n+SignatureSize {
		return nil
	}
	const ts, nonce = 1 + IDSize, 1 + IDSize + 8
	if b[0] != e.Version || ID(b[1:ts]) != e.Channel ||
		binary.BigEndian.Uint64(b[ts:]) != uint64(e.Timestamp) ||
		[NonceSize]byte(b[nonce:]) != e.Nonce ||
		!bytes.Equal(b[headerSize:headerSize+n], e.Ciphertext) ||
		[SignatureSize]byte(b[headerSize+n:]) != e.Signature {
		return nil
	}
	return b
}

// keep records signed (envelopeDomain || canonical encoding) as the
// envelope's kept encoding and hashes it for the ID. It is called only
// while the envelope is being made.
func (e *Envelope) keep(signed []byte) {
	e.signed = signed
	e.id = sha256.Sum256(signed[len(envelopeDomain):])
}

// signingInput is what the write key signs: a domain tag, then the
// canonical encoding.
func (e *Envelope) signingInput() []byte {
	if e.kept() != nil {
		k := len(e.signed) - SignatureSize
		return e.signed[:k:k]
	}
	b := make([]byte, 0, len(envelopeDomain)+headerSize+len(e.Ciphertext))
	b = append(b, envelopeDomain...)
	return e.appendSigned(b)
}

// Encoding returns the canonical binary encoding of the signed envelope,
// as MarshalBinary does, but without a copy when e still matches the
// encoding it was decoded or sealed with: those bytes are never written
// again, so the caller may keep them (a store does, until it has written
// them) but must not change them.
func (e *Envelope) Encoding() []byte {
	if k := e.kept(); k != nil {
		return k[:len(k):len(k)]
	}
	b, _ := e.MarshalBinary()
	return b
}

// MarshalBinary returns the canonical binary encoding of the signed
// envelope: the header, the ciphertext and the signature. The result is
// the caller's.
func (e *Envelope) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, e.Size()))
}

// AppendBinary appends the canonical binary encoding to b
// (encoding.BinaryAppender).
func (e *Envelope) AppendBinary(b []byte) ([]byte, error) {
	if k := e.kept(); k != nil {
		return append(b, k...), nil
	}
	b = e.appendSigned(b)
	return append(b, e.Signature[:]...), nil
}

// Size is the length of the envelope's binary encoding.
func (e *Envelope) Size() int { return headerSize + len(e.Ciphertext) + SignatureSize }

// ID returns the message ID: SHA-256 of the binary encoding.
func (e *Envelope) ID() MessageID {
	if e.kept() != nil {
		return e.id
	}
	b, _ := e.MarshalBinary()
	return sha256.Sum256(b)
}

// Clone returns a copy of e that shares no memory with it and keeps its
// canonical encoding and ID (see Envelope), all in one allocation beside
// the struct. It is how an envelope built field by field (from the wire)
// gets them.
func (e *Envelope) Clone() *Envelope {
	c := &Envelope{Version: e.Version, Channel: e.Channel, Timestamp: e.Timestamp, Nonce: e.Nonce, Signature: e.Signature}
	k := len(envelopeDomain) + e.Size()
	b := make([]byte, 0, k+len(e.Ciphertext))
	b = append(b, envelopeDomain...)
	b = e.appendSigned(b)
	b = append(b, e.Signature[:]...)
	c.Ciphertext = append(b[k:k], e.Ciphertext...)
	if e.kept() != nil {
		c.signed, c.id = b[:k:k], e.id
	} else {
		c.keep(b[:k:k])
	}
	return c
}

// UnmarshalEnvelope decodes the canonical binary encoding. It checks
// lengths before it allocates and copies what it keeps, so the result does
// not alias b. It checks structure only; Validate checks the rest.
func UnmarshalEnvelope(b []byte) (*Envelope, error) {
	v, err := ViewEnvelope(b)
	if err != nil {
		return nil, err
	}
	e := &v
	// One allocation: the kept encoding, then the ciphertext's own copy
	// (never the kept bytes, so changing it in place is noticed).
	k := len(envelopeDomain) + len(b)
	buf := make([]byte, 0, k+len(v.Ciphertext))
	buf = append(append(buf, envelopeDomain...), b...)
	e.Ciphertext = append(buf[k:k], v.Ciphertext...)
	e.keep(buf[:k:k])
	return e, nil
}

// ViewEnvelope decodes the canonical binary encoding like
// UnmarshalEnvelope, with the same checks, but allocates nothing: the
// result's Ciphertext aliases b and no encoding is kept. It is for passing
// a stored envelope on (re-framing it for the wire) without copying it;
// the result is valid only while b is unchanged.
func ViewEnvelope(b []byte) (Envelope, error) {
	if len(b) < headerSize+SignatureSize {
		return Envelope{}, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", ErrMalformed, len(b), headerSize+SignatureSize)
	}
	if len(b) > MaxEnvelopeSize {
		return Envelope{}, fmt.Errorf("%w: %d bytes is over the %d-byte maximum", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	e := Envelope{Version: b[0]}
	p := 1
	p += copy(e.Channel[:], b[p:])
	e.Timestamp = int64(binary.BigEndian.Uint64(b[p:]))
	p += 8
	p += copy(e.Nonce[:], b[p:])
	n := int(binary.BigEndian.Uint32(b[p:]))
	p += 4
	if n != len(b)-headerSize-SignatureSize {
		return Envelope{}, fmt.Errorf("%w: ciphertext length field says %d, envelope holds %d", ErrMalformed, n, len(b)-headerSize-SignatureSize)
	}
	e.Ciphertext = b[p : p+n : p+n]
	copy(e.Signature[:], b[p+n:])
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
