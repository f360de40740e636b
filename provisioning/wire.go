package provisioning

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
)

// ProtocolID is the libp2p protocol of pairing.
const ProtocolID = "/redpanda/pair/1.0.0"

// MaxFrame caps a frame body; the largest message (Proof) is 161 bytes.
const MaxFrame = 256

// Message types (first byte of a frame body).
const (
	msgChallenge byte = 1
	msgProof     byte = 2
	msgResult    byte = 3
)

// protoVersion is the version byte of the challenge.
const protoVersion byte = 1

// Status is the node's verdict in the Result message.
type Status byte

// Statuses of the Result message.
const (
	StatusPaired     Status = 0 // the phone's identity is the owner (now or already)
	StatusRejected   Status = 1 // proof did not verify
	StatusNotWaiting Status = 2 // node has another owner or is resetting
	StatusBusy       Status = 3 // too many attempts from this address wait their turn
	StatusMalformed  Status = 4 // the proof frame was malformed
	StatusFailed     Status = 5 // internal error on the node
)

func (s Status) err() error {
	switch s {
	case StatusPaired:
		return nil
	case StatusRejected:
		return ErrRejected
	case StatusNotWaiting:
		return ErrNotWaiting
	case StatusBusy:
		return ErrBusy
	case StatusMalformed:
		return fmt.Errorf("%w: node says our proof was malformed", ErrBadMessage)
	case StatusFailed:
		return ErrNodeFailed
	}
	return fmt.Errorf("%w: unknown status %d", ErrBadMessage, s)
}

// Proof is the phone's answer to the challenge.
type Proof struct {
	PhoneNonce [NonceSize]byte
	Owner      ed25519.PublicKey
	MAC        [32]byte
	Sig        [ed25519.SignatureSize]byte
}

const proofSize = 1 + NonceSize + ed25519.PublicKeySize + 32 + ed25519.SignatureSize

func (p *Proof) marshal() []byte {
	b := make([]byte, 0, proofSize)
	b = append(b, msgProof)
	b = append(b, p.PhoneNonce[:]...)
	b = append(b, p.Owner...)
	b = append(b, p.MAC[:]...)
	return append(b, p.Sig[:]...)
}

// decodeProof parses a Proof body (network input).
func decodeProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) != proofSize || b[0] != msgProof {
		return p, fmt.Errorf("%w: proof: want type %d and %d bytes, got %d bytes", ErrBadMessage, msgProof, proofSize, len(b))
	}
	b = b[1:]
	copy(p.PhoneNonce[:], b)
	b = b[NonceSize:]
	p.Owner = ed25519.PublicKey(append([]byte(nil), b[:ed25519.PublicKeySize]...))
	b = b[ed25519.PublicKeySize:]
	copy(p.MAC[:], b)
	copy(p.Sig[:], b[32:])
	return p, nil
}

func marshalChallenge(nonce [NonceSize]byte) []byte {
	return append([]byte{msgChallenge, protoVersion}, nonce[:]...)
}

// decodeChallenge parses a Challenge body (network input, phone side).
func decodeChallenge(b []byte) ([NonceSize]byte, error) {
	var n [NonceSize]byte
	if len(b) != 2+NonceSize || b[0] != msgChallenge {
		return n, fmt.Errorf("%w: challenge: want type %d and %d bytes, got %d bytes", ErrBadMessage, msgChallenge, 2+NonceSize, len(b))
	}
	if b[1] != protoVersion {
		return n, fmt.Errorf("%w: challenge: protocol version %d, want %d", ErrBadMessage, b[1], protoVersion)
	}
	copy(n[:], b[2:])
	return n, nil
}

// decodeResult parses a Result body (network input, phone side).
func decodeResult(b []byte) (Status, error) {
	if len(b) != 2 || b[0] != msgResult {
		return 0, fmt.Errorf("%w: result: want type %d and 2 bytes, got %d bytes", ErrBadMessage, msgResult, len(b))
	}
	return Status(b[1]), nil
}

// writeFrame writes a 2-byte big-endian length and the body.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > MaxFrame {
		return fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrBadMessage, len(body), MaxFrame)
	}
	buf := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(body)), uint16(len(body)))
	_, err := w.Write(append(buf, body...))
	return err
}

// readFrame reads one frame, refusing bodies over MaxFrame before reading
// them.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read frame header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > MaxFrame {
		return nil, fmt.Errorf("%w: frame length %d not in 1..%d", ErrBadMessage, n, MaxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read frame body: %w", err)
	}
	return body, nil
}
