package wire

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// The hot frames are encoded by hand: a relayed message went through an
// Envelope, a protobuf struct tree, proto.Marshal and a second buffer for
// the length prefix. These functions write the same bytes proto.Marshal
// writes (tests compare them) straight into the frame buffer.

// AppendMsgFrame appends m as one frame, length prefix included, to dst:
// what WriteMsg writes, marshalled in place.
func AppendMsgFrame(dst []byte, m proto.Message) ([]byte, error) {
	n := proto.Size(m)
	dst = binary.AppendUvarint(dst, uint64(n))
	// The sizes proto.Size just computed are reused: m is not changed in
	// between.
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("wire: marshal %T: %w", m, err)
	}
	if len(out)-len(dst) != n {
		return dst, fmt.Errorf("wire: marshal %T: %d bytes, sized %d", m, len(out)-len(dst), n)
	}
	return out, nil
}

// Field numbers of wire.proto used by the hand encoders.
const (
	frameBody = 5
	framePush = 7
	frameAck  = 8

	bodyEnvelope = 1
	seqField     = 1 // Push.seq and Ack.seq
	pushEnvelope = 2
	ackID        = 2

	envVersion    = 1
	envChannel    = 2
	envTimestamp  = 3
	envNonce      = 4
	envCiphertext = 5
	envSignature  = 6
)

// envelopeSize is the protobuf size of EnvelopeToPB(e). Zero scalars and
// empty bytes are left out, as proto3 does.
func envelopeSize(e *channel.Envelope) int {
	n := protowire.SizeTag(envChannel) + protowire.SizeBytes(channel.IDSize) +
		protowire.SizeTag(envNonce) + protowire.SizeBytes(channel.NonceSize) +
		protowire.SizeTag(envSignature) + protowire.SizeBytes(channel.SignatureSize)
	if e.Version != 0 {
		n += protowire.SizeTag(envVersion) + protowire.SizeVarint(uint64(e.Version))
	}
	if e.Timestamp != 0 {
		n += protowire.SizeTag(envTimestamp) + protowire.SizeVarint(uint64(e.Timestamp))
	}
	if len(e.Ciphertext) > 0 {
		n += protowire.SizeTag(envCiphertext) + protowire.SizeBytes(len(e.Ciphertext))
	}
	return n
}

func appendEnvelope(b []byte, e *channel.Envelope) []byte {
	if e.Version != 0 {
		b = protowire.AppendTag(b, envVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(e.Version))
	}
	b = protowire.AppendTag(b, envChannel, protowire.BytesType)
	b = protowire.AppendBytes(b, e.Channel[:])
	if e.Timestamp != 0 {
		b = protowire.AppendTag(b, envTimestamp, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(e.Timestamp))
	}
	b = protowire.AppendTag(b, envNonce, protowire.BytesType)
	b = protowire.AppendBytes(b, e.Nonce[:])
	if len(e.Ciphertext) > 0 {
		b = protowire.AppendTag(b, envCiphertext, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Ciphertext)
	}
	b = protowire.AppendTag(b, envSignature, protowire.BytesType)
	return protowire.AppendBytes(b, e.Signature[:])
}

// appendFrameHead grows dst for a frame whose one field, number kind,
// holds a message of inner bytes, and appends the length prefix and that
// field's tag and length.
func appendFrameHead(dst []byte, kind protowire.Number, inner int) []byte {
	frame := protowire.SizeTag(kind) + protowire.SizeBytes(inner)
	if need := binary.MaxVarintLen64 + frame; cap(dst)-len(dst) < need {
		dst = append(make([]byte, 0, len(dst)+need), dst...)
	}
	dst = binary.AppendUvarint(dst, uint64(frame))
	dst = protowire.AppendTag(dst, kind, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(inner))
}

// AppendBodyFrame appends a Body frame carrying e, length prefix
// included: the bytes of WriteMsg(Frame{Body{EnvelopeToPB(e)}}), in one
// allocation at most. With channel.ViewEnvelope a node serves a stored
// envelope without copying it first.
func AppendBodyFrame(dst []byte, e *channel.Envelope) []byte {
	env := envelopeSize(e)
	dst = appendFrameHead(dst, frameBody, protowire.SizeTag(bodyEnvelope)+protowire.SizeBytes(env))
	dst = protowire.AppendTag(dst, bodyEnvelope, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(env))
	return appendEnvelope(dst, e)
}

// AppendPushFrame appends a Push frame of seq and e, length prefix
// included: the bytes of WriteMsg(Frame{Push{seq, EnvelopeToPB(e)}}).
func AppendPushFrame(dst []byte, seq uint64, e *channel.Envelope) []byte {
	dst = appendSeqFrameHead(dst, framePush, seq, pushEnvelope, envelopeSize(e))
	return appendEnvelope(dst, e)
}

// AppendAckFrame appends an Ack frame of seq and id, length prefix
// included: the bytes of WriteMsg(Frame{Ack{seq, id}}). A node sends one
// for every pushed message.
func AppendAckFrame(dst []byte, seq uint64, id channel.MessageID) []byte {
	dst = appendSeqFrameHead(dst, frameAck, seq, ackID, len(id))
	return append(dst, id[:]...)
}

// appendSeqFrameHead is appendFrameHead for the messages that hold a seq
// (field 1, left out when zero, as proto3 does) and then one bytes field
// of inner bytes (Push, Ack): it appends everything up to those bytes.
func appendSeqFrameHead(dst []byte, kind protowire.Number, seq uint64, field protowire.Number, inner int) []byte {
	msg := protowire.SizeTag(field) + protowire.SizeBytes(inner)
	if seq != 0 {
		msg += protowire.SizeTag(seqField) + protowire.SizeVarint(seq)
	}
	dst = appendFrameHead(dst, kind, msg)
	if seq != 0 {
		dst = protowire.AppendTag(dst, seqField, protowire.VarintType)
		dst = protowire.AppendVarint(dst, seq)
	}
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(inner))
}
