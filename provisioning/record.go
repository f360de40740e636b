package provisioning

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// State is where the node is in its life with an owner.
type State int

// States. New exists only until the first record is written; Resetting
// only between the first and last write of a factory reset (a power cut
// there resumes the reset on the next start).
const (
	StateNew State = iota
	StateWaiting
	StateOwned
	StateResetting
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateWaiting:
		return "waiting for pairing"
	case StateOwned:
		return "owned"
	case StateResetting:
		return "resetting"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Owner is the identity that paired with the node. It is hop 0 of the
// node's registration order.
type Owner struct {
	Key      ed25519.PublicKey
	PairedAt time.Time
}

// recordKey is the one key this package writes in its bucket: the whole
// state is one record so that owner, state and token flip together.
var recordKey = []byte("state")

const recordVersion = 1

// record is the persisted state. Layout (all after version, state bytes):
// waiting: tokenKey[32]; owned: owner[32] pairedAtMs(u64 BE);
// resetting: renew(1) len(1) oldPeer.
type record struct {
	state    State
	tokenKey TokenKey
	owner    ed25519.PublicKey
	pairedAt time.Time
	renew    bool
	oldPeer  peer.ID
}

func (r record) marshal() []byte {
	b := []byte{recordVersion, byte(r.state)}
	switch r.state {
	case StateWaiting:
		b = append(b, r.tokenKey[:]...)
	case StateOwned:
		b = append(b, r.owner...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.pairedAt.UnixMilli()))
	case StateResetting:
		renew := byte(0)
		if r.renew {
			renew = 1
		}
		b = append(b, renew, byte(len(r.oldPeer)))
		b = append(b, r.oldPeer...)
	}
	return b
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 2 || b[0] != recordVersion {
		return r, fmt.Errorf("%w: record of %d bytes, want version %d", ErrCorruptState, len(b), recordVersion)
	}
	r.state, b = State(b[1]), b[2:]
	switch r.state {
	case StateWaiting:
		if len(b) != len(r.tokenKey) {
			return r, fmt.Errorf("%w: waiting record with %d bytes of token key", ErrCorruptState, len(b))
		}
		copy(r.tokenKey[:], b)
	case StateOwned:
		if len(b) != ed25519.PublicKeySize+8 {
			return r, fmt.Errorf("%w: owned record of %d bytes", ErrCorruptState, len(b))
		}
		r.owner = ed25519.PublicKey(append([]byte(nil), b[:ed25519.PublicKeySize]...))
		r.pairedAt = time.UnixMilli(int64(binary.BigEndian.Uint64(b[ed25519.PublicKeySize:])))
	case StateResetting:
		if len(b) < 2 || b[0] > 1 || int(b[1]) != len(b)-2 {
			return r, fmt.Errorf("%w: resetting record malformed", ErrCorruptState)
		}
		r.renew = b[0] == 1
		r.oldPeer = peer.ID(b[2:])
	default:
		return r, fmt.Errorf("%w: unknown state %d", ErrCorruptState, r.state)
	}
	return r, nil
}
