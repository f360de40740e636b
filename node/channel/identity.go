package channel

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
)

// IdentityKey is an author's public identity: an Ed25519 public key.
type IdentityKey [ed25519.PublicKeySize]byte

// String returns the identity as a key string ("rpi…").
func (p IdentityKey) String() string {
	return encodeKeyString(PrefixIdentity, p[:], checksumV2)
}

// Hex returns the identity in lower-case hex.
func (p IdentityKey) Hex() string { return hex.EncodeToString(p[:]) }

// ParseIdentityKey parses the string IdentityKey.String returns.
func ParseIdentityKey(s string) (IdentityKey, error) {
	var p IdentityKey
	f, payload, err := decodeKeyString(s)
	if err != nil {
		return p, err
	}
	if f.prefix != PrefixIdentity {
		return p, fmt.Errorf("%w: a %s is not an identity", ErrUnknownPrefix, f.what)
	}
	copy(p[:], payload)
	return p, nil
}

// Identity is an author's key pair. Authors sign inside the ciphertext, so
// members can tell authors apart while relays learn nothing about them.
type Identity struct {
	priv ed25519.PrivateKey
	pub  IdentityKey
}

// NewIdentity makes an identity from 32 bytes read from rand.
func NewIdentity(rand io.Reader) (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("channel.NewIdentity: %w", err)
	}
	return IdentityFromSeed(seed)
}

// IdentityFromSeed rebuilds an identity from its 32-byte seed.
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("channel.IdentityFromSeed: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	id := &Identity{priv: ed25519.NewKeyFromSeed(seed)}
	copy(id.pub[:], id.priv.Public().(ed25519.PublicKey))
	return id, nil
}

// Public returns the identity's public key.
func (i *Identity) Public() IdentityKey { return i.pub }

// Seed returns a copy of the private seed, for storing the identity.
func (i *Identity) Seed() []byte { return i.priv.Seed() }

// Sign signs domain || msg. Every use has its own domain string so a
// signature made for one purpose is never valid for another.
func (i *Identity) Sign(domain string, msg []byte) []byte {
	return ed25519.Sign(i.priv, append([]byte(domain), msg...))
}

// Verify checks a signature made by Sign.
func (p IdentityKey) Verify(domain string, msg, sig []byte) bool {
	return verifySig(p[:], append([]byte(domain), msg...), sig)
}
