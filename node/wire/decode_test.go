package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// unprefixed strips a frame's length prefix.
func unprefixed(t testing.TB, framed []byte) []byte {
	_, n := binary.Uvarint(framed)
	if n <= 0 {
		t.Fatal("bad prefix")
	}
	return framed[n:]
}

// sameAsGeneral checks that the fast decoder's answer for b, when it has
// one, is the general decoder's.
func sameAsGeneral(t testing.TB, b []byte) (fast bool) {
	in, ok := decodeEnvelopeFrame(b)
	if !ok {
		return false
	}
	f, err := DecodeFrame(b)
	if err != nil {
		t.Fatalf("fast path took %x, DecodeFrame refuses it: %v", b, err)
	}
	pe, seq, push := f.GetBody().GetEnvelope(), uint64(0), false
	if p := f.GetPush(); p != nil {
		pe, seq, push = p.GetEnvelope(), p.GetSeq(), true
	}
	e, err := EnvelopeFromPB(pe)
	if err != nil {
		t.Fatalf("fast path took %x, EnvelopeFromPB refuses it: %v", b, err)
	}
	got, _ := in.Envelope.MarshalBinary()
	want, _ := e.MarshalBinary()
	if in.Push != push || in.Seq != seq || !bytes.Equal(got, want) || in.Envelope.ID() != e.ID() {
		t.Fatalf("fast path: push %v seq %d %x; general: push %v seq %d %x", in.Push, in.Seq, got, push, seq, want)
	}
	return true
}

// TestDecodeEnvelopeFrame: what the encoders of this package and
// proto.Marshal write takes the fast path and decodes as DecodeFrame
// does; other layouts of the same frames fall back to it.
func TestDecodeEnvelopeFrame(t *testing.T) {
	e := fixedEnvelope()
	push := unprefixed(t, AppendPushFrame(nil, 9, e))
	env, err := proto.Marshal(EnvelopeToPB(e))
	if err != nil || env[0] != 0x08 || env[1] != channel.Version {
		t.Fatalf("envelope %x does not start with version %d: %v", env, channel.Version, err)
	}
	seqLast := protowire.AppendTag(nil, pushEnvelope, protowire.BytesType)
	seqLast = protowire.AppendBytes(seqLast, env)
	seqLast = protowire.AppendVarint(protowire.AppendTag(seqLast, seqField, protowire.VarintType), 9)
	seqLastFrame := protowire.AppendBytes(protowire.AppendTag(nil, framePush, protowire.BytesType), seqLast)
	bigVersion := protowire.AppendVarint(protowire.AppendTag(nil, envVersion, protowire.VarintType), 1<<32+2)
	bigVersion = append(bigVersion, env[2:]...) // env starts with version 2: tag and one byte
	bigVersionBody := protowire.AppendBytes(protowire.AppendTag(nil, bodyEnvelope, protowire.BytesType), bigVersion)
	bigVersionFrame := protowire.AppendBytes(protowire.AppendTag(nil, frameBody, protowire.BytesType), bigVersionBody)
	tests := []struct {
		name string
		b    []byte
		fast bool
	}{
		// Every case but "empty" is a frame DecodeFrame accepts.
		{"push", push, true},
		{"body", unprefixed(t, AppendBodyFrame(nil, e)), true},
		{"push, no seq", unprefixed(t, AppendPushFrame(nil, 0, e)), true},
		{"push via proto", unprefixed(t, viaProto(t, pushPB(3, e))), true},
		{"trailing unknown field", protowire.AppendVarint(protowire.AppendTag(bytes.Clone(push), 99, protowire.VarintType), 1), false},
		{"seq after envelope", seqLastFrame, false},
		{"version over a byte (uint32 wraps)", bigVersionFrame, false},
		{"body twice", append(unprefixed(t, AppendBodyFrame(nil, e)), unprefixed(t, AppendBodyFrame(nil, e))...), false},
		{"hello", unprefixed(t, viaProto(t, &wirepb.Frame{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{}}})), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if fast := sameAsGeneral(t, tc.b); fast != tc.fast {
				t.Fatalf("fast path %v, want %v", fast, tc.fast)
			}
			if _, err := DecodeFrame(tc.b); (err == nil) != (tc.name != "empty") {
				t.Fatalf("DecodeFrame: %v", err)
			}
			// ReadSync takes the same path.
			framed := append(binary.AppendUvarint(nil, uint64(len(tc.b))), tc.b...)
			in, _, err := ReadSync(bytes.NewReader(framed), MaxFrameSize)
			if err != nil {
				return // the general decoder refused it; sameAsGeneral compared
			}
			if (in.Envelope != nil) != tc.fast || (in.Frame != nil) == tc.fast {
				t.Fatalf("ReadSync: envelope %v, frame %v; fast %v", in.Envelope != nil, in.Frame != nil, tc.fast)
			}
		})
	}
}

func FuzzDecodeEnvelopeFrame(f *testing.F) {
	e := fixedEnvelope()
	f.Add(unprefixed(f, AppendPushFrame(nil, 9, e)))
	f.Add(unprefixed(f, AppendBodyFrame(nil, e)))
	e.Version, e.Timestamp, e.Ciphertext = 0, -5, nil
	f.Add(unprefixed(f, AppendPushFrame(nil, 0, e)))
	f.Add(unprefixed(f, viaProto(f, &wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{Envelope: &wirepb.Envelope{Channel: make([]byte, 32)}}}})))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		sameAsGeneral(t, b)
		if !bytes.Equal(in, b) {
			t.Fatal("decoding changed its input")
		}
		if d, ok := decodeEnvelopeFrame(b); ok {
			clear(b) // the envelope must not alias the frame buffer
			if got, _ := decodeEnvelopeFrame(in); got.Envelope.ID() != d.Envelope.ID() {
				t.Fatal("envelope changed with the frame buffer")
			}
		}
	})
}
