package channel

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// zip215 is protocol v2's one rule for the Ed25519 signatures that relays
// and members check and must agree on: the write signature of an
// envelope, author signatures, identities (registrations, hop tickets,
// blocks) and DHT statements. (The pairing proof and the owner's login
// are checked only by the one node they are for, with crypto/ed25519; an
// honest signature verifies under either rule.) It is ZIP 215's: S must be canonical (below the group order
// L); A and R may be any encoding of a curve point, small-order and
// non-canonical ones included; and the equation is cofactored,
// [8][S]B = [8]R + [8][k]A.
//
// Every honestly made signature verifies under it exactly as under
// crypto/ed25519 (cofactorless, canonical R); the two differ only on
// signatures made on purpose with a small-order component in R or A, which
// only the holder of the private key can make. What ZIP 215 buys is that
// checking one signature and checking many at once in a batch (2-3x
// cheaper per signature, BatchVerifier) accept exactly the same
// signatures, so whether a relay stores a message cannot depend on how
// busy it was. Under crypto/ed25519's rule a batch may accept what a
// single check refuses, and nodes could disagree. Every such verifier of
// v2 (relays, and phones through the client SDK) uses this function; an
// implementation of its own must follow ZIP 215 too.
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// verifySig reports whether sig is pub's Ed25519 signature of msg under
// the ZIP 215 rule. It is the one signature check of the package (write
// signatures, author signatures, statements through ID.VerifySignature);
// BatchVerifier checks write signatures many at a time under the same
// rule. Wrong lengths are false, never a panic.
func verifySig(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, zip215)
}

// VerifySignature reports whether sig is the channel write key's Ed25519
// signature of msg (the channel ID is the write public key), under the
// ZIP 215 rule every signature of protocol v2 follows. Other packages
// that check a write-key signature (discovery statements) use it so every
// check in the node follows the same rule.
func (id ID) VerifySignature(msg, sig []byte) bool {
	return verifySig(id[:], msg, sig)
}
