package channel

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// ContentKind says what a message body is. Only members see it: it travels
// inside the ciphertext.
type ContentKind uint8

// Content kinds. Zero is not a kind.
const (
	KindText       ContentKind = iota + 1 // a chat message
	KindMediaChunk                        // one chunk of a media file
	KindReceipt                           // delivery or read receipt
	KindControl                           // membership and channel control
	KindBlock                             // signed history snapshot (paper §4.2)
	KindDust                              // cover traffic, discarded by readers
)

var kindNames = [...]string{KindText: "text", KindMediaChunk: "media-chunk", KindReceipt: "receipt",
	KindControl: "control", KindBlock: "block", KindDust: "dust"}

// Valid reports whether k is one of the defined kinds.
func (k ContentKind) Valid() bool { return k >= KindText && k <= KindDust }

// String returns the kind's name.
func (k ContentKind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Plaintexts are padded to the smallest of these buckets that holds them,
// so an envelope's size reveals only its bucket.
var buckets = [...]int{256, 1024, 4096, 16 * 1024, 64 * 1024}

const (
	// slotSize is the ephemeral X25519 public key every envelope carries at
	// the start of its ciphertext, sealed or not, so the two look alike.
	slotSize = 32
	// sealOverhead is what the ciphertext adds to a padded plaintext.
	sealOverhead = slotSize + chacha20poly1305.Overhead
	// innerHeader is kind(1) + author key(32) + author signature(64) + body length(4).
	innerHeader = 1 + ed25519.PublicKeySize + ed25519.SignatureSize + 4
	// MaxBody is the largest message body Seal accepts.
	MaxBody = 64*1024 - innerHeader
)

// Domain tags for the other signatures and keys.
const (
	authorDomain = "redpanda/v2/author\x00"
	labelSealed  = "redpanda/v2/sealed-message"
)

// validCiphertextLen reports whether n is a bucket plus the overhead.
func validCiphertextLen(n int) bool {
	for _, b := range buckets {
		if n == b+sealOverhead {
			return true
		}
	}
	return false
}

// bucketFor returns the padded size for a plaintext of n bytes.
func bucketFor(n int) (int, bool) {
	for _, b := range buckets {
		if n <= b {
			return b, true
		}
	}
	return 0, false
}

// Message is an opened envelope.
type Message struct {
	ID        MessageID
	Channel   ID
	Timestamp time.Time // the writer's clock, millisecond precision
	Kind      ContentKind
	Author    IdentityKey
	Body      []byte
	Sealed    bool // written by a write-only member (sealed to the channel)
}

// Seal encrypts body as a message of the given kind by author and signs it
// with the channel's write key. A full key encrypts with the read key; a
// write-only key, which has none, seals to the channel's X25519 key. A
// read-only key cannot seal (ErrCannotWrite). rand supplies the nonce and
// the ephemeral key; now is the timestamp.
func (k *Key) Seal(author *Identity, kind ContentKind, body []byte, now time.Time, rand io.Reader) (*Envelope, error) {
	if !k.CanWrite() {
		return nil, fmt.Errorf("channel.Seal: %s key: %w", k.capability, ErrCannotWrite)
	}
	if author == nil {
		return nil, fmt.Errorf("channel.Seal: no author identity")
	}
	if !kind.Valid() {
		return nil, fmt.Errorf("channel.Seal: unknown content kind %d", uint8(kind))
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("channel.Seal: %w: body of %d bytes is over the %d-byte maximum", ErrTooLarge, len(body), MaxBody)
	}
	e := &Envelope{Version: Version, Channel: k.id, Timestamp: now.UnixMilli()}
	var eph [slotSize]byte
	if _, err := io.ReadFull(rand, e.Nonce[:]); err != nil {
		return nil, fmt.Errorf("channel.Seal: nonce: %w", err)
	}
	if _, err := io.ReadFull(rand, eph[:]); err != nil {
		return nil, fmt.Errorf("channel.Seal: ephemeral key: %w", err)
	}
	ephPriv, err := ecdh.X25519().NewPrivateKey(eph[:])
	if err != nil {
		return nil, fmt.Errorf("channel.Seal: ephemeral key: %w", err)
	}
	slot := ephPriv.PublicKey().Bytes()

	var aead cipher.AEAD
	if k.CanRead() {
		aead = k.newAEAD()
	} else {
		if aead, err = sealedAEAD(ephPriv, k.sealPub, slot); err != nil {
			return nil, fmt.Errorf("channel.Seal: %w", err)
		}
	}

	size, _ := bucketFor(innerHeader + len(body))
	pt := make([]byte, innerHeader, size)
	pt[0] = byte(kind)
	copy(pt[1:], author.pub[:])
	copy(pt[1+ed25519.PublicKeySize:], author.Sign(authorDomain, authorInput(e, kind, body)))
	binary.BigEndian.PutUint32(pt[innerHeader-4:], uint32(len(body)))
	pt = append(pt, body...)
	pt = pt[:size] // make zeroed the spare capacity: that is the padding

	e.Ciphertext = make([]byte, slotSize, size+sealOverhead)
	copy(e.Ciphertext, slot)
	e.Ciphertext = aead.Seal(e.Ciphertext, e.Nonce[:], pt, additionalData(e, slot))
	// The signing input is kept with the signature appended: the
	// envelope's canonical encoding, so its ID costs no second encoding.
	in := make([]byte, 0, len(envelopeDomain)+e.Size())
	in = e.appendSigned(append(in, envelopeDomain...))
	copy(e.Signature[:], ed25519.Sign(k.write, in))
	e.keep(append(in, e.Signature[:]...))
	return e, nil
}

// Open verifies e's write signature, decrypts it, and verifies the author's
// signature. It does not check the timestamp window: Validate does.
func (k *Key) Open(e *Envelope) (*Message, error) {
	if !k.CanRead() {
		return nil, fmt.Errorf("channel.Open: %s key: %w", k.capability, ErrCannotRead)
	}
	if e == nil {
		return nil, fmt.Errorf("channel.Open: %w: nil envelope", ErrMalformed)
	}
	if e.Channel != k.id {
		return nil, fmt.Errorf("channel.Open: %w: envelope for %s, key for %s", ErrWrongChannel, e.Channel, k.id)
	}
	if err := checkStructure(e); err != nil {
		return nil, fmt.Errorf("channel.Open: %w", err)
	}
	if !verifySig(e.Channel[:], e.signingInput(), e.Signature[:]) {
		return nil, fmt.Errorf("channel.Open: %w", ErrBadSignature)
	}
	slot, ct := e.Ciphertext[:slotSize], e.Ciphertext[slotSize:]
	ad := additionalData(e, slot)
	sealed := false
	pt, err := k.newAEAD().Open(nil, e.Nonce[:], ct, ad)
	if err != nil {
		// Not symmetric: try sealed. Both look alike on the wire, so
		// trying is the only way to tell.
		sealed = true
		pt, err = k.openSealed(e.Nonce[:], slot, ct, ad)
		if err != nil {
			return nil, fmt.Errorf("channel.Open: %w", ErrDecrypt)
		}
	}
	m, authorSig, err := decodePlaintext(pt)
	if err != nil {
		return nil, fmt.Errorf("channel.Open: %w", err)
	}
	if !m.Author.Verify(authorDomain, authorInput(e, m.Kind, m.Body), authorSig) {
		return nil, fmt.Errorf("channel.Open: %w by %s", ErrBadAuthor, m.Author)
	}
	m.ID = e.ID()
	m.Channel = e.Channel
	m.Timestamp = time.UnixMilli(e.Timestamp)
	m.Sealed = sealed
	return m, nil
}

func (k *Key) openSealed(nonce, slot, ct, ad []byte) ([]byte, error) {
	ephPub, err := ecdh.X25519().NewPublicKey(slot)
	if err != nil {
		return nil, err
	}
	shared, err := k.sealPriv.ECDH(ephPub)
	if err != nil { // low-order point
		return nil, err
	}
	aead, err := sealedKey(shared, slot, k.sealPriv.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nonce, ct, ad)
}

// sealedAEAD is the writer's side of the sealed-box key agreement.
func sealedAEAD(ephPriv *ecdh.PrivateKey, sealPub *ecdh.PublicKey, slot []byte) (cipher.AEAD, error) {
	shared, err := ephPriv.ECDH(sealPub)
	if err != nil {
		return nil, fmt.Errorf("sealing public key: %w", err)
	}
	return sealedKey(shared, slot, sealPub.Bytes())
}

// sealedKey derives the message key from the X25519 shared secret, bound
// to both public keys.
func sealedKey(shared, ephPub, sealPub []byte) (cipher.AEAD, error) {
	salt := make([]byte, 0, 2*slotSize)
	salt = append(append(salt, ephPub...), sealPub...)
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, shared, salt, []byte(labelSealed)), key); err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(key)
}

// additionalData binds the ciphertext to the envelope header (version,
// channel, timestamp, nonce) and the ephemeral key, so a ciphertext cannot
// be moved to another channel or time.
func additionalData(e *Envelope, slot []byte) []byte {
	b := make([]byte, 0, 1+IDSize+8+NonceSize+slotSize)
	b = append(b, e.Version)
	b = append(b, e.Channel[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
	b = append(b, e.Nonce[:]...)
	return append(b, slot...)
}

// authorInput is what the author signs: where and when the message is
// posted, its kind and its body.
func authorInput(e *Envelope, kind ContentKind, body []byte) []byte {
	b := make([]byte, 0, 1+IDSize+8+NonceSize+1+len(body))
	b = append(b, e.Version)
	b = append(b, e.Channel[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
	b = append(b, e.Nonce[:]...)
	b = append(b, byte(kind))
	return append(b, body...)
}

// decodePlaintext parses a decrypted, padded plaintext. The padding must
// be zero so that there is exactly one plaintext per message.
func decodePlaintext(pt []byte) (*Message, []byte, error) {
	if len(pt) < innerHeader {
		return nil, nil, fmt.Errorf("%w: plaintext of %d bytes is shorter than its %d-byte header", ErrMalformed, len(pt), innerHeader)
	}
	m := &Message{Kind: ContentKind(pt[0])}
	if !m.Kind.Valid() {
		return nil, nil, fmt.Errorf("%w: unknown content kind %d", ErrMalformed, pt[0])
	}
	copy(m.Author[:], pt[1:])
	sig := pt[1+ed25519.PublicKeySize : 1+ed25519.PublicKeySize+ed25519.SignatureSize]
	n := binary.BigEndian.Uint32(pt[innerHeader-4:])
	if uint64(n) > uint64(len(pt)-innerHeader) {
		return nil, nil, fmt.Errorf("%w: body length %d overruns the %d-byte plaintext", ErrMalformed, n, len(pt))
	}
	m.Body = pt[innerHeader : innerHeader+int(n)]
	pad := pt[innerHeader+int(n):]
	if subtle.ConstantTimeCompare(pad, make([]byte, len(pad))) != 1 {
		return nil, nil, fmt.Errorf("%w: non-zero padding", ErrMalformed)
	}
	return m, sig, nil
}
