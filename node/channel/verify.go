package channel

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// stdlibRules makes curve25519-voi accept exactly what crypto/ed25519.Verify
// accepts: cofactorless equation, canonical S and R, any A that decodes
// (small-order and non-canonical encodings included). Relays must agree on
// every signature, or a message one node stores another drops, so the
// faster code is used only under the standard library's rules; batch
// verification (ZIP-215) accepts more and is not used.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifySig reports whether sig is pub's Ed25519 signature of msg. It is
// the one signature check of the package (write signatures, author
// signatures, statements through ID.VerifySignature): curve25519-voi is
// ~1.5x faster than crypto/ed25519 here with the same acceptance. Wrong
// lengths are false, never a panic.
func verifySig(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlibRules)
}

// VerifySignature reports whether sig is the channel write key's Ed25519
// signature of msg (the channel ID is the write public key). It accepts
// exactly what crypto/ed25519.Verify accepts; other packages that check a
// write-key signature (discovery statements) use it so every check in the
// node follows the same rules.
func (id ID) VerifySignature(msg, sig []byte) bool {
	return verifySig(id[:], msg, sig)
}
