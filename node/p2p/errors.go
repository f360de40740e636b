package p2p

import "errors"

// Sentinel errors callers branch on (wrapped with the file name and the
// operation; test with errors.Is).
var (
	// ErrIdentityCorrupt means the identity file exists but does not hold a
	// valid Ed25519 libp2p private key. It is never replaced automatically:
	// the peer ID is the node's name to its owner and friends.
	ErrIdentityCorrupt = errors.New("p2p: identity file is corrupt")
	// ErrIdentityPermissions means the identity file is readable or writable
	// by group or others, so the key may have leaked or been replaced.
	ErrIdentityPermissions = errors.New("p2p: identity file permissions are too open")
	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("p2p: invalid config")
	// ErrListen means a configured listen address did not come up (see
	// ListenError): its port is in use, or the address cannot be bound.
	ErrListen = errors.New("p2p: listener did not come up")
)
