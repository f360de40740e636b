// Package bundle is the signed update bundle of the home node's A/B
// firmware updates: how a release is packed on a build machine, signed
// with an offline Ed25519 release key, and checked on the box before a
// byte of it is written.
//
// A bundle is one file:
//
//	"RPBUNDLE" | version 1 (1 byte) | manifest length (4, big-endian) | manifest (JSON)
//	| signature block length (4) | signature block (JSON) | payload
//
// The manifest names the board the bundle is for (compatible), its version
// (a Debian version, ordered as dpkg orders them) and the root slot image
// it carries: its size and SHA-256, and the size, SHA-256 and compression
// of the payload that holds it. The signature block holds Ed25519
// signatures over the manifest's exact bytes (under a domain tag) and may
// carry release keys endorsed by older ones, which is how the release key
// is rotated: a box trusts the keys of its image's keyring, and a bundle
// signed by a new key carries that key signed by a key the box trusts.
// So one signature check covers the version, the board and the image's
// hash, and the payload is checked against the manifest before it is
// written (VerifyPayload) and again, hashed as it streams, while it is
// written (Image): RAUC's guarantees for a plain (non-verity) bundle.
//
// The package knows the format, keys and version order; it must not know
// disks, slots, boot loaders, the appliance or the network.
package bundle
