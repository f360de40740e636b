package wire

import (
	"fmt"
	"math"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Header is what a node announces about a stored message.
type Header struct {
	ID        channel.MessageID
	Channel   channel.ID
	Timestamp int64 // Unix milliseconds
	Size      uint32
}

// EnvelopeToPB converts an envelope for the wire.
func EnvelopeToPB(e *channel.Envelope) *wirepb.Envelope {
	return &wirepb.Envelope{
		Version:    uint32(e.Version),
		Channel:    e.Channel[:],
		Timestamp:  e.Timestamp,
		Nonce:      e.Nonce[:],
		Ciphertext: e.Ciphertext,
		Signature:  e.Signature[:],
	}
}

// EnvelopeFromPB converts a received envelope, checking every fixed-size
// field and the ciphertext cap. The result does not alias p and keeps its
// canonical encoding and ID (channel.Envelope.Clone), so the relay path
// encodes and hashes it once. Version, timestamp and signature are left
// to channel.Validate.
func EnvelopeFromPB(p *wirepb.Envelope) (*channel.Envelope, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: missing envelope", ErrMalformedFrame)
	}
	if p.GetVersion() > math.MaxUint8 {
		return nil, fmt.Errorf("%w: envelope version %d does not fit a byte", ErrMalformedFrame, p.GetVersion())
	}
	e := channel.Envelope{Version: uint8(p.GetVersion()), Timestamp: p.GetTimestamp()}
	if err := copyFixed(e.Channel[:], p.GetChannel(), "envelope channel"); err != nil {
		return nil, err
	}
	if err := copyFixed(e.Nonce[:], p.GetNonce(), "envelope nonce"); err != nil {
		return nil, err
	}
	if err := copyFixed(e.Signature[:], p.GetSignature(), "envelope signature"); err != nil {
		return nil, err
	}
	if n := len(p.GetCiphertext()); n > channel.MaxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes, cap %d", channel.ErrTooLarge, n, channel.MaxCiphertext)
	}
	e.Ciphertext = p.GetCiphertext()
	return e.Clone(), nil
}

// HeaderToPB converts a header for the wire.
func HeaderToPB(h Header) *wirepb.Header {
	return &wirepb.Header{Id: h.ID[:], Channel: h.Channel[:], Timestamp: h.Timestamp, Size: h.Size}
}

// HeaderFromPB converts a received header, checking field sizes.
func HeaderFromPB(p *wirepb.Header) (Header, error) {
	var h Header
	if p == nil {
		return h, fmt.Errorf("%w: missing header", ErrMalformedFrame)
	}
	if err := copyFixed(h.ID[:], p.GetId(), "header id"); err != nil {
		return h, err
	}
	if err := copyFixed(h.Channel[:], p.GetChannel(), "header channel"); err != nil {
		return h, err
	}
	if p.GetSize() > channel.MaxEnvelopeSize {
		return h, fmt.Errorf("%w: header size %d over the %d-byte envelope cap", ErrMalformedFrame, p.GetSize(), channel.MaxEnvelopeSize)
	}
	h.Timestamp, h.Size = p.GetTimestamp(), p.GetSize()
	return h, nil
}

// MessageID converts a 32-byte wire ID.
func MessageID(b []byte) (channel.MessageID, error) {
	var id channel.MessageID
	return id, copyFixed(id[:], b, "message id")
}

// ChannelID converts a 32-byte wire channel ID.
func ChannelID(b []byte) (channel.ID, error) {
	var id channel.ID
	return id, copyFixed(id[:], b, "channel id")
}

func copyFixed(dst, src []byte, what string) error {
	if len(src) != len(dst) {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformedFrame, what, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}
