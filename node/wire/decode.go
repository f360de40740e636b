package wire

import (
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Incoming is one frame read by ReadSync: a Push or Body decoded straight
// into its envelope, or any other frame as a Frame.
type Incoming struct {
	Frame *wirepb.Frame // nil when Envelope is set

	// Envelope is a Push's or Body's envelope, checked as EnvelopeFromPB
	// checks it; Push says which, Seq is the Push's.
	Envelope *channel.Envelope
	Push     bool
	Seq      uint64
}

// ReadSync reads one sync frame of at most max bytes, like ReadSyncFrame.
// A Push or Body in the layout proto.Marshal writes is decoded straight
// into a channel.Envelope, skipping the protobuf structs and their copies
// of every field; any other frame, or one of those in another layout, goes
// through DecodeFrame, so every frame is decided exactly as DecodeFrame
// and EnvelopeFromPB decide it (tests and a fuzz test compare the two).
func ReadSync(r io.Reader, max int) (Incoming, int, error) {
	bp := frameBufs.Get().(*[]byte)
	defer putFrameBuf(bp)
	b, err := readFrame(r, max, *bp)
	if err != nil {
		return Incoming{}, 0, err
	}
	*bp = b[:0]
	if in, ok := decodeEnvelopeFrame(b); ok {
		return in, len(b), nil
	}
	f, err := DecodeFrame(b)
	return Incoming{Frame: f}, len(b), err
}

// decodeEnvelopeFrame decodes b if it is a Frame holding only a Push or
// a Body, whose fields come in field order, each at most once, with the
// expected wire types, no unknown fields, and an envelope EnvelopeFromPB
// accepts. Anything else is not ok and left to the general decoder, whose
// answer for these bytes would be the same envelope.
func decodeEnvelopeFrame(b []byte) (Incoming, bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType || (num != frameBody && num != framePush) {
		return Incoming{}, false
	}
	msg, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return Incoming{}, false
	}
	in := Incoming{Push: num == framePush}
	envField := protowire.Number(bodyEnvelope)
	if in.Push {
		envField = pushEnvelope
		if num, typ, n := protowire.ConsumeTag(msg); n > 0 && num == seqField && typ == protowire.VarintType {
			seq, m := protowire.ConsumeVarint(msg[n:])
			if m < 0 {
				return Incoming{}, false
			}
			in.Seq = seq
			msg = msg[n+m:]
		}
	}
	num, typ, n = protowire.ConsumeTag(msg)
	if n < 0 || num != envField || typ != protowire.BytesType {
		return Incoming{}, false
	}
	env, m := protowire.ConsumeBytes(msg[n:])
	if m < 0 || n+m != len(msg) {
		return Incoming{}, false
	}
	e, ok := decodeEnvelope(env)
	if !ok {
		return Incoming{}, false
	}
	in.Envelope = e.Clone()
	return in, true
}

// decodeEnvelope decodes a wirepb.Envelope in field order into a view
// whose Ciphertext aliases b.
func decodeEnvelope(b []byte) (channel.Envelope, bool) {
	var e channel.Envelope
	var seen [envSignature + 1]bool
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num <= last || num > envSignature {
			return e, false
		}
		last = num
		b = b[n:]
		switch num {
		case envVersion, envTimestamp:
			if typ != protowire.VarintType {
				return e, false
			}
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return e, false
			}
			b = b[m:]
			if num == envTimestamp {
				e.Timestamp = int64(v)
			} else if v > math.MaxUint8 {
				return e, false // the general decoder's uint32 rules decide
			} else {
				e.Version = uint8(v)
			}
		default:
			if typ != protowire.BytesType {
				return e, false
			}
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return e, false
			}
			b = b[m:]
			var dst []byte
			switch num {
			case envChannel:
				dst = e.Channel[:]
			case envNonce:
				dst = e.Nonce[:]
			case envSignature:
				dst = e.Signature[:]
			case envCiphertext:
				if len(v) > channel.MaxCiphertext {
					return e, false
				}
				e.Ciphertext = v
				seen[num] = true
				continue
			}
			if len(v) != len(dst) {
				return e, false
			}
			copy(dst, v)
		}
		seen[num] = true
	}
	return e, seen[envChannel] && seen[envNonce] && seen[envSignature]
}
