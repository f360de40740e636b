package channel

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// SecretSize is the length of a channel's root secret and of every
// symmetric key derived from it.
const SecretSize = 32

// HKDF labels. Each derived key has its own label so that no two keys are
// ever related in a way an attacker could use.
const (
	labelRead  = "redpanda/v2/read-key"
	labelWrite = "redpanda/v2/write-key"
	labelSeal  = "redpanda/v2/seal-key"
)

// Capability says what a Key lets its holder do in a channel.
type Capability uint8

// The three capabilities. Zero is not a capability.
const (
	CapabilityFull  Capability = iota + 1 // read and write
	CapabilityRead                        // read only: read key + write public key
	CapabilityWrite                       // write only: write private key + sealing public key
)

// String returns "full", "read" or "write".
func (c Capability) String() string {
	switch c {
	case CapabilityFull:
		return "full"
	case CapabilityRead:
		return "read"
	case CapabilityWrite:
		return "write"
	}
	return fmt.Sprintf("capability(%d)", uint8(c))
}

// ParseCapability accepts the names String returns.
func ParseCapability(s string) (Capability, error) {
	switch s {
	case "full":
		return CapabilityFull, nil
	case "read":
		return CapabilityRead, nil
	case "write":
		return CapabilityWrite, nil
	}
	return 0, fmt.Errorf("channel: unknown capability %q (want full, read or write)", s)
}

// Key is one member's capability for one channel. A Key is immutable and
// safe for concurrent use.
//
// Which fields are set depends on the capability:
//
//	full:  root, read, write, seal (private and public)
//	read:  read, seal private (derived from read), id
//	write: write, seal public, id
type Key struct {
	capability Capability
	id         ID

	root     *[SecretSize]byte  // full only
	readKey  *[SecretSize]byte  // full and read
	write    ed25519.PrivateKey // full and write
	sealPriv *ecdh.PrivateKey   // full and read
	sealPub  *ecdh.PublicKey    // full and write
}

// NewKey makes a new channel from 32 bytes read from rand and returns its
// full capability.
func NewKey(rand io.Reader) (*Key, error) {
	var secret [SecretSize]byte
	if _, err := io.ReadFull(rand, secret[:]); err != nil {
		return nil, fmt.Errorf("channel.NewKey: %w", err)
	}
	return KeyFromSecret(secret[:])
}

// KeyFromSecret returns the full capability of the channel whose root
// secret is secret (32 bytes).
func KeyFromSecret(secret []byte) (*Key, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("channel.KeyFromSecret: secret is %d bytes, want %d", len(secret), SecretSize)
	}
	root := new([SecretSize]byte)
	copy(root[:], secret)
	readKey := new([SecretSize]byte)
	derive(readKey[:], root[:], labelRead)
	var writeSeed [ed25519.SeedSize]byte
	derive(writeSeed[:], root[:], labelWrite)
	k, err := readOnlyKey(readKey, ed25519.NewKeyFromSeed(writeSeed[:]).Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	k.capability = CapabilityFull
	k.root = root
	k.write = ed25519.NewKeyFromSeed(writeSeed[:])
	k.sealPub = k.sealPriv.PublicKey()
	return k, nil
}

// readOnlyKey builds a read capability. The sealing private key is derived
// from the read key, so everyone who can read symmetric messages can also
// read sealed ones.
func readOnlyKey(readKey *[SecretSize]byte, writePub ed25519.PublicKey) (*Key, error) {
	var sealSeed [SecretSize]byte
	derive(sealSeed[:], readKey[:], labelSeal)
	sealPriv, err := ecdh.X25519().NewPrivateKey(sealSeed[:])
	if err != nil {
		return nil, fmt.Errorf("channel: sealing key: %w", err)
	}
	k := &Key{capability: CapabilityRead, readKey: readKey, sealPriv: sealPriv}
	copy(k.id[:], writePub)
	return k, nil
}

// writeOnlyKey builds a write capability from the write seed and the
// sealing public key.
func writeOnlyKey(writeSeed, sealPub []byte) (*Key, error) {
	pub, err := ecdh.X25519().NewPublicKey(sealPub)
	if err != nil {
		return nil, fmt.Errorf("channel: sealing public key: %w", err)
	}
	k := &Key{capability: CapabilityWrite, write: ed25519.NewKeyFromSeed(writeSeed), sealPub: pub}
	copy(k.id[:], k.write.Public().(ed25519.PublicKey))
	return k, nil
}

// derive fills out with HKDF-SHA256(secret, label). The secrets are
// uniformly random, so HKDF's extract step needs no salt.
func derive(out, secret []byte, label string) {
	r := hkdf.New(sha256.New, secret, nil, []byte(label))
	if _, err := io.ReadFull(r, out); err != nil {
		// HKDF-SHA256 can produce 255*32 bytes; we ask for 32.
		panic("channel: hkdf: " + err.Error())
	}
}

// ID returns the channel ID: the channel's Ed25519 write public key.
func (k *Key) ID() ID { return k.id }

// Capability returns what the key lets its holder do.
func (k *Key) Capability() Capability { return k.capability }

// CanRead reports whether the key can open the channel's messages.
func (k *Key) CanRead() bool { return k.readKey != nil }

// CanWrite reports whether the key can seal messages that pass Validate.
func (k *Key) CanWrite() bool { return k.write != nil }

// Secret returns a copy of the root secret, or nil unless the key is full.
func (k *Key) Secret() []byte {
	if k.root == nil {
		return nil
	}
	return append([]byte(nil), k.root[:]...)
}

// ReadOnly derives the read-only capability of the same channel. It fails
// for a write-only key, which holds no read key.
func (k *Key) ReadOnly() (*Key, error) {
	if !k.CanRead() {
		return nil, fmt.Errorf("channel: derive read-only from %s key: %w", k.capability, ErrCannotRead)
	}
	if k.capability == CapabilityRead {
		return k, nil
	}
	return readOnlyKey(k.readKey, k.id[:])
}

// WriteOnly derives the write-only capability of the same channel. It fails
// for a read-only key, which holds no write key.
func (k *Key) WriteOnly() (*Key, error) {
	if !k.CanWrite() {
		return nil, fmt.Errorf("channel: derive write-only from %s key: %w", k.capability, ErrCannotWrite)
	}
	if k.capability == CapabilityWrite {
		return k, nil
	}
	return writeOnlyKey(k.write.Seed(), k.sealPub.Bytes())
}

// Share derives the capability c (read or write) from k; Share(CapabilityFull)
// succeeds only for a full key and returns it.
func (k *Key) Share(c Capability) (*Key, error) {
	switch c {
	case CapabilityRead:
		return k.ReadOnly()
	case CapabilityWrite:
		return k.WriteOnly()
	case CapabilityFull:
		if k.capability != CapabilityFull {
			return nil, fmt.Errorf("channel: a %s key cannot grant full access", k.capability)
		}
		return k, nil
	}
	return nil, fmt.Errorf("channel: unknown capability %d", uint8(c))
}

// Equal reports whether two keys are the same capability of the same channel.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.capability == o.capability && k.String() == o.String()
}

// newAEAD returns the channel's symmetric AEAD. Only readers call it.
func (k *Key) newAEAD() cipher.AEAD {
	a, err := chacha20poly1305.NewX(k.readKey[:])
	if err != nil {
		panic("channel: xchacha20poly1305 with a 32-byte key: " + err.Error())
	}
	return a
}
