package channel

import (
	"fmt"
	"io"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// DefaultBatchKeys is how many channels' expanded write keys a
// BatchVerifier keeps by default.
const DefaultBatchKeys = 1024

// BatchVerifier checks the write signatures of many envelopes in one
// batch: one multi-scalar multiplication for the whole batch instead of
// one double-scalar multiplication per signature, 2-3x cheaper per
// signature from a dozen signatures on. It follows the same ZIP 215 rule
// as Validate, so it accepts exactly what Validate accepts (a batch that
// fails is checked one signature at a time to find the bad ones).
//
// It keeps the expanded form of the write keys it has seen (the channel ID
// decoded into a precomputed table, which costs about a third of a
// verification to make), at most maxKeys of them; most traffic on a node
// is in a few channels. The randomness of the batch equation is its
// caller's. It is safe for concurrent use.
type BatchVerifier struct {
	rand    io.Reader
	maxKeys int

	mu   sync.Mutex
	keys map[ID]*voi.ExpandedPublicKey
}

// NewBatchVerifier returns a verifier drawing the batch equation's random
// coefficients from rand (crypto/rand.Reader in a node), keeping up to
// maxKeys expanded write keys (DefaultBatchKeys when maxKeys <= 0).
func NewBatchVerifier(rand io.Reader, maxKeys int) *BatchVerifier {
	if maxKeys <= 0 {
		maxKeys = DefaultBatchKeys
	}
	return &BatchVerifier{rand: rand, maxKeys: maxKeys, keys: make(map[ID]*voi.ExpandedPublicKey)}
}

// key returns the expanded write key of ch, or nil if ch is no curve point
// (no signature by it can verify). A full table is emptied and refilled:
// cheaper than tracking use, and bounded.
func (b *BatchVerifier) key(ch ID) *voi.ExpandedPublicKey {
	b.mu.Lock()
	k, ok := b.keys[ch]
	b.mu.Unlock()
	if ok {
		return k
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(ch[:]))
	if err != nil {
		return nil
	}
	b.mu.Lock()
	if len(b.keys) >= b.maxKeys {
		clear(b.keys)
	}
	b.keys[ch] = k
	b.mu.Unlock()
	return k
}

// Keys is how many expanded write keys b holds.
func (b *BatchVerifier) Keys() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.keys)
}

// VerifySignatures checks the write signature of each of envs and sets
// errs[i] (len(errs) >= len(envs)) to nil when envs[i]'s is valid, or to
// the error Validate returns for a bad signature. Only the signature is
// checked: the caller runs ValidateUnsigned first for the rest.
func (b *BatchVerifier) VerifySignatures(envs []*Envelope, errs []error) {
	if len(envs) == 1 {
		errs[0] = nil
		if k := b.key(envs[0].Channel); k == nil || !voi.VerifyExpandedWithOptions(k, envs[0].signingInput(), envs[0].Signature[:], zip215) {
			errs[0] = signatureError(envs[0])
		}
		return
	}
	bv := voi.NewBatchVerifier()
	added := make([]int, 0, len(envs))
	for i, e := range envs {
		errs[i] = nil
		k := b.key(e.Channel)
		if k == nil {
			errs[i] = signatureError(e)
			continue
		}
		bv.AddExpandedWithOptions(k, e.signingInput(), e.Signature[:], zip215)
		added = append(added, i)
	}
	if len(added) == 0 {
		return
	}
	_, valid := bv.Verify(b.rand)
	for j, i := range added {
		if !valid[j] {
			errs[i] = signatureError(envs[i])
		}
	}
}

// signatureError is Validate's error for a bad write signature.
func signatureError(e *Envelope) error {
	return fmt.Errorf("channel.Validate: %w for channel %s", ErrBadSignature, e.Channel)
}
