package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Domain tags of the two things a release key signs.
const (
	manifestDomain    = "redpanda/v2/update-manifest\x00"
	endorsementDomain = "redpanda/v2/update-key-endorsement\x00"
	// maxEndorsements bounds the key chain a bundle may carry.
	maxEndorsements = 8
)

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
type KeyID string

// IDOf returns the ID of a public key.
func IDOf(pub ed25519.PublicKey) KeyID {
	s := sha256.Sum256(pub)
	return KeyID(hex.EncodeToString(s[:8]))
}

// GenerateKey makes a release key pair as PEM: the private key in PKCS #8
// (what `openssl genpkey -algorithm ed25519` writes) and the public key
// in PKIX (`openssl pkey -pubout`).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// ParsePrivateKey reads an Ed25519 private key in PKCS #8 PEM.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: not a PEM \"PRIVATE KEY\"", ErrBadKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T, not Ed25519", ErrBadKey, k)
	}
	return priv, nil
}

// ParsePublicKey reads an Ed25519 public key in PKIX PEM.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: not a PEM \"PUBLIC KEY\"", ErrBadKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T, not Ed25519", ErrBadKey, k)
	}
	return pub, nil
}

// Keyring is the set of release keys a box trusts, and the keys it must
// never trust again.
type Keyring struct {
	keys    map[KeyID]ed25519.PublicKey
	names   map[KeyID]string
	revoked map[KeyID]bool
}

// NewKeyring trusts pubs.
func NewKeyring(pubs ...ed25519.PublicKey) *Keyring {
	kr := &Keyring{keys: map[KeyID]ed25519.PublicKey{}, names: map[KeyID]string{}, revoked: map[KeyID]bool{}}
	for _, p := range pubs {
		kr.keys[IDOf(p)] = p
	}
	return kr
}

// LoadKeyring reads a keyring directory: every NAME.pub is a trusted key
// (PKIX PEM), every NAME.revoked a key never to trust, even when endorsed.
// A directory with no trusted key is an error: nothing could be installed.
func LoadKeyring(dir string) (*Keyring, error) {
	kr := NewKeyring()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle: keyring %s: %w", dir, err)
	}
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".pub" && ext != ".revoked") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("bundle: keyring: %w", err)
		}
		pub, err := ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("bundle: keyring %s: %w", e.Name(), err)
		}
		id := IDOf(pub)
		if ext == ".revoked" {
			kr.revoked[id] = true
			continue
		}
		kr.keys[id] = pub
		kr.names[id] = strings.TrimSuffix(e.Name(), ext)
	}
	for id := range kr.revoked {
		delete(kr.keys, id)
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("bundle: keyring %s: %w", dir, fs.ErrNotExist)
	}
	return kr, nil
}

// Revoke makes id untrusted, whether it is in the keyring or endorsed.
func (kr *Keyring) Revoke(id KeyID) {
	kr.revoked[id] = true
	delete(kr.keys, id)
}

// IDs lists the trusted keys.
func (kr *Keyring) IDs() []KeyID {
	ids := make([]KeyID, 0, len(kr.keys))
	for id := range kr.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Name is the file name a key was loaded from ("" when added otherwise).
func (kr *Keyring) Name(id KeyID) string { return kr.names[id] }

// Endorsement is a release key signed by another: how a new release key
// is introduced to boxes that trust only the old one.
type Endorsement struct {
	Key []byte `json:"key"` // the endorsed Ed25519 public key
	By  KeyID  `json:"by"`  // the endorsing key
	Sig []byte `json:"sig"` // By's signature over endorsementDomain | Key
}

// Endorse signs newKey with the private key by.
func Endorse(by ed25519.PrivateKey, newKey ed25519.PublicKey) Endorsement {
	return Endorsement{
		Key: slices.Clone(newKey),
		By:  IDOf(by.Public().(ed25519.PublicKey)),
		Sig: ed25519.Sign(by, append([]byte(endorsementDomain), newKey...)),
	}
}

// extend returns the keys trusted for one bundle: the keyring's and those
// endorsed, directly or in a chain, by them; revoked keys never.
func (kr *Keyring) extend(es []Endorsement) (map[KeyID]ed25519.PublicKey, error) {
	if len(es) > maxEndorsements {
		return nil, fmt.Errorf("%w: %d key endorsements, at most %d", ErrMalformed, len(es), maxEndorsements)
	}
	trusted := make(map[KeyID]ed25519.PublicKey, len(kr.keys)+len(es))
	for id, k := range kr.keys {
		trusted[id] = k
	}
	for changed := true; changed; {
		changed = false
		for _, e := range es {
			if len(e.Key) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%w: endorsed key of %d bytes", ErrMalformed, len(e.Key))
			}
			id := IDOf(e.Key)
			by, ok := trusted[e.By]
			if _, have := trusted[id]; have || !ok || kr.revoked[id] {
				continue
			}
			if !ed25519.Verify(by, append([]byte(endorsementDomain), e.Key...), e.Sig) {
				return nil, fmt.Errorf("%w: the endorsement of key %s by %s does not verify", ErrBadSignature, id, e.By)
			}
			trusted[id] = ed25519.PublicKey(e.Key)
			changed = true
		}
	}
	return trusted, nil
}

// ErrBadKey: a key file that is not an Ed25519 key in PEM.
var ErrBadKey = errors.New("bundle: bad key")
