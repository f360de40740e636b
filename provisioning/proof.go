package provisioning

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// NonceSize is the size of both session nonces.
const NonceSize = 32

// Domain tags keep the token key, the MAC and the signature from ever
// being valid for another purpose.
const (
	tagKey = "redpanda/pair/1 token key"
	tagMAC = "redpanda/pair/1 mac\x00"
	tagSig = "redpanda/pair/1 sig\x00"
)

// TokenKey is what the node stores instead of the token:
// HKDF-SHA256(IKM = token, salt = empty, info = "redpanda/pair/1 token key").
type TokenKey [32]byte

// DeriveTokenKey derives the key that keys the pairing MAC.
func DeriveTokenKey(t Token) TokenKey {
	k, err := hkdf.Key(sha256.New, t[:], nil, tagKey, 32)
	if err != nil {
		panic("provisioning: hkdf: " + err.Error()) // only for out-of-range lengths
	}
	var out TokenKey
	copy(out[:], k)
	return out
}

// transcript binds a proof to one session: both peers, both nonces and
// the identity that becomes the owner. Peer IDs are length-prefixed
// binary multihashes.
func transcript(node, phone peer.ID, nodeNonce, phoneNonce [NonceSize]byte, owner ed25519.PublicKey) ([]byte, error) {
	n, p := []byte(node), []byte(phone)
	if len(n) == 0 || len(n) > 255 || len(p) == 0 || len(p) > 255 {
		return nil, fmt.Errorf("%w: peer ID of %d or %d bytes", ErrBadMessage, len(n), len(p))
	}
	if len(owner) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: owner key of %d bytes", ErrBadMessage, len(owner))
	}
	t := make([]byte, 0, 2+len(n)+len(p)+3*32)
	t = append(t, byte(len(n)))
	t = append(t, n...)
	t = append(t, byte(len(p)))
	t = append(t, p...)
	t = append(t, nodeNonce[:]...)
	t = append(t, phoneNonce[:]...)
	return append(t, owner...), nil
}

func proofMAC(k TokenKey, t []byte) [32]byte {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(tagMAC))
	m.Write(t)
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

func sigMessage(t []byte) []byte { return append([]byte(tagSig), t...) }
