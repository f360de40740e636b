// Package channel holds a redPanda channel's keys and capabilities, the
// key strings people paste and scan, and the envelope: how a message is
// sealed, signed, opened and validated.
//
// It is pure: no I/O, no clock and no randomness of its own (both are
// passed in), so every result is reproducible in tests. It must not know
// about storage, networking, or anything above the protocol.
//
// # Keys
//
// A channel is a random 32-byte root secret. HKDF-SHA256 derives, each
// under its own label ("redpanda/v2/read-key", "redpanda/v2/write-key"):
// the read key (XChaCha20-Poly1305) and the write key (an Ed25519 seed; the
// channel ID is its public key). The X25519 sealing key pair is derived
// from the read key ("redpanda/v2/seal-key"), not from the root, so every
// capability that can read can also read sealed messages. Capabilities:
//
//	full   root secret                               "rpf…"
//	read   read key || write public key              "rpr…"
//	write  write seed || sealing public key          "rpw…"
//
// An author identity public key prints as "rpi…". A key string is
// prefix + Base58(payload || checksum) (Bitcoin alphabet), the checksum
// being the first 4 bytes of SHA-256(SHA-256(prefix || payload)). v2
// prefixes start with "rp", the paper's 1.0 ones ("pr", "pu", 8-byte
// checksum) with "p", so the two never collide. A "pr" string imports as
// the full key of the v2 channel whose root secret is its 32 bytes. A
// channel key string (rpf, rpr, rpw) may carry up to MaxHintBytes more
// between the key and the checksum: a node hint (package node/hint, where
// the sharer's home node is), opaque here. Strings without one are
// exactly what they were before hints existed.
//
// # Envelope
//
// The ciphertext is an ephemeral X25519 public key (32 bytes) followed by
// XChaCha20-Poly1305 output under the envelope's random nonce. A full
// member encrypts with the read key; a write-only member, who has no read
// key, encrypts with HKDF(X25519(ephemeral, sealing public key)). Both
// always carry a real ephemeral public key and pad to the same buckets
// (256 B, 1, 4, 16, 64 KiB of plaintext), so sealed posts and dust look like
// any other message; a reader tries the read key first, then the sealing
// key. The associated data is version || channel || timestamp || nonce ||
// ephemeral key: a ciphertext cannot be moved to another channel or time.
// The plaintext is kind || author public key || author signature || body
// length || body || zero padding; the author signs version, channel,
// timestamp, nonce, kind and body under its own domain tag. The write key
// signs the whole envelope under "redpanda/v2/envelope\x00".
//
// # Signatures
//
// Every signature relays and members check is verified under ZIP 215's
// rule (canonical S; any encoding of a point as A and R; the cofactored
// equation), by one function here. Honest signatures verify exactly as
// under crypto/ed25519; the rule is chosen so that a BatchVerifier, which
// checks dozens of write signatures in one multi-scalar multiplication at
// 2-3x less cost each, accepts exactly what a single check accepts.
package channel
