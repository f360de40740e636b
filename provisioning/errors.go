package provisioning

import "errors"

// Sentinel errors that callers branch on; test with errors.Is.
var (
	// ErrBadURI: the pairing URI does not follow docs/PAIRING.md.
	ErrBadURI = errors.New("provisioning: bad pairing URI")
	// ErrBadMessage: a pairing protocol frame is malformed or unexpected.
	ErrBadMessage = errors.New("provisioning: malformed pairing message")
	// ErrRejected: the node refused the proof (wrong or dead token, a token
	// of another node, or a proof made for another session).
	ErrRejected = errors.New("provisioning: pairing proof rejected")
	// ErrNotWaiting: the node is not waiting for pairing (it has an owner,
	// or is in the middle of a reset); only a factory reset re-opens it.
	ErrNotWaiting = errors.New("provisioning: node is not waiting for pairing")
	// ErrBusy: too many pairing attempts from this address wait for their
	// turn; try again later.
	ErrBusy = errors.New("provisioning: node busy with other pairing attempts from this address")
	// ErrNodeFailed: the node hit an internal error (e.g. its store).
	ErrNodeFailed = errors.New("provisioning: node failed to complete pairing")
	// ErrCorruptState: the stored provisioning record is unreadable. It is
	// never replaced automatically (it may name the owner).
	ErrCorruptState = errors.New("provisioning: stored state is corrupt")
	// ErrRestartRequired: the node identity was renewed by a reset; the
	// host must be rebuilt with the new key before pairing can resume.
	ErrRestartRequired = errors.New("provisioning: node identity renewed, restart required")
	// ErrOwnerConflict: the configured owner is not the identity the node
	// is owned by; only a factory reset hands the node to another owner.
	ErrOwnerConflict = errors.New("provisioning: configured owner differs from the node's owner")
	// ErrUnsupportedKey: the node identity is not an Ed25519 key.
	ErrUnsupportedKey = errors.New("provisioning: node identity must be Ed25519")
)
