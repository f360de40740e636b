package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// viaProto is what the hand encoders replace: the frame through protobuf
// structs, proto.Marshal and WriteFrame.
func viaProto(t testing.TB, f *wirepb.Frame) []byte {
	var buf bytes.Buffer
	if err := WriteMsg(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bodyPB(e *channel.Envelope) *wirepb.Frame {
	return &wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{Envelope: EnvelopeToPB(e)}}}
}

func pushPB(seq uint64, e *channel.Envelope) *wirepb.Frame {
	return &wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: seq, Envelope: EnvelopeToPB(e)}}}
}

// checkFrames compares the hand-encoded Body and Push frames of e with
// the protobuf path, appended to a buffer that already holds bytes, and
// decodes them back to e.
func checkFrames(t testing.TB, e *channel.Envelope, seq uint64) {
	prefix := []byte("kept")
	if got, want := AppendBodyFrame(bytes.Clone(prefix), e), append(bytes.Clone(prefix), viaProto(t, bodyPB(e))...); !bytes.Equal(got, want) {
		t.Fatalf("body frame\n got %x\nwant %x", got, want)
	}
	push := AppendPushFrame(bytes.Clone(prefix), seq, e)
	if want := append(bytes.Clone(prefix), viaProto(t, pushPB(seq, e))...); !bytes.Equal(push, want) {
		t.Fatalf("push frame\n got %x\nwant %x", push, want)
	}
	f, _, err := ReadSyncFrame(bytes.NewReader(push[len(prefix):]), MaxFrameSize+channel.MaxEnvelopeSize)
	if err != nil {
		return // structurally invalid (a short ciphertext cap is not ours to check)
	}
	back, err := EnvelopeFromPB(f.GetPush().GetEnvelope())
	if err != nil || f.GetPush().GetSeq() != seq || back.ID() != e.ID() {
		t.Fatalf("push frame decodes to seq %d, %v (err %v)", f.GetPush().GetSeq(), back, err)
	}
}

// TestAppendAckFrame: the hand-encoded Ack is the protobuf path's bytes,
// at the edges of seq and for any ID, and decodes back.
func TestAppendAckFrame(t *testing.T) {
	for _, seq := range []uint64{0, 1, 127, 128, 300, 1 << 35, math.MaxUint64} {
		for _, id := range []channel.MessageID{{}, {1, 2, 3}, {31: 0xff}} {
			prefix := []byte("kept")
			got := AppendAckFrame(bytes.Clone(prefix), seq, id)
			want := append(bytes.Clone(prefix), viaProto(t, &wirepb.Frame{Kind: &wirepb.Frame_Ack{Ack: &wirepb.Ack{Seq: seq, Id: id[:]}}})...)
			if !bytes.Equal(got, want) {
				t.Fatalf("seq %d, id %x\n got %x\nwant %x", seq, id, got, want)
			}
			f, _, err := ReadSyncFrame(bytes.NewReader(got[len(prefix):]), MaxFrameSize)
			if err != nil || f.GetAck().GetSeq() != seq || !bytes.Equal(f.GetAck().GetId(), id[:]) {
				t.Fatalf("seq %d: decodes to %v (err %v)", seq, f, err)
			}
		}
	}
}

// TestAppendFrames: the hand encoders write exactly the bytes of the
// protobuf path, zero fields (left out by proto3) and extremes included.
func TestAppendFrames(t *testing.T) {
	big := fixedEnvelope()
	big.Ciphertext = bytes.Repeat([]byte{7}, channel.MaxCiphertext)
	tests := []struct {
		name string
		mod  func(e *channel.Envelope)
	}{
		{"golden", func(*channel.Envelope) {}},
		{"zero version", func(e *channel.Envelope) { e.Version = 0 }},
		{"version 255", func(e *channel.Envelope) { e.Version = 255 }},
		{"zero timestamp", func(e *channel.Envelope) { e.Timestamp = 0 }},
		{"negative timestamp", func(e *channel.Envelope) { e.Timestamp = math.MinInt64 }},
		{"empty ciphertext", func(e *channel.Envelope) { e.Ciphertext = nil }},
		{"zero channel, nonce and signature", func(e *channel.Envelope) {
			e.Channel, e.Nonce, e.Signature = channel.ID{}, [channel.NonceSize]byte{}, [channel.SignatureSize]byte{}
		}},
		{"largest ciphertext", func(e *channel.Envelope) { e.Ciphertext = big.Ciphertext }},
		{"everything zero", func(e *channel.Envelope) { *e = channel.Envelope{} }},
	}
	for _, tc := range tests {
		for _, seq := range []uint64{0, 1, 300, math.MaxUint64} {
			e := fixedEnvelope()
			tc.mod(e)
			checkFrames(t, e, seq)
		}
	}
}

// TestAppendMsgFrame: a frame marshalled in place is what WriteMsg writes.
func TestAppendMsgFrame(t *testing.T) {
	for _, f := range []*wirepb.Frame{
		{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: "a", Want: [][]byte{make([]byte, 32)}, MaxInFlight: 9, Light: true}}},
		{Kind: &wirepb.Frame_Ack{Ack: &wirepb.Ack{Seq: 5, Id: make([]byte, 32)}}},
		{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: []*wirepb.Header{HeaderToPB(Header{Size: 400, Timestamp: -1})}}}},
		bodyPB(fixedEnvelope()),
		{},
	} {
		got, err := AppendMsgFrame([]byte("x"), f)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("x"), viaProto(t, f)...); !bytes.Equal(got, want) {
			t.Fatalf("%v:\n got %x\nwant %x", f, got, want)
		}
	}
}

// TestReadSyncFrameOwnsItsFields: frames read through the pooled buffer
// keep their contents while later frames reuse it.
func TestReadSyncFrameOwnsItsFields(t *testing.T) {
	var stream bytes.Buffer
	var sent []*wirepb.Frame
	for i := range 50 {
		e := fixedEnvelope()
		e.Timestamp += int64(i)
		e.Ciphertext = bytes.Repeat([]byte{byte(i)}, 10+i*97)
		f := pushPB(uint64(i+1), e)
		sent = append(sent, f)
		stream.Write(viaProto(t, f))
		stream.Write(viaProto(t, &wirepb.Frame{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: string(rune('a' + i%26))}}}))
	}
	var got []*wirepb.Frame
	for {
		f, _, err := ReadSyncFrame(&stream, MaxFrameSize)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	for i, f := range sent {
		if !proto.Equal(got[2*i], f) || got[2*i+1].GetHello().GetAgent() != string(rune('a'+i%26)) {
			t.Fatalf("frame %d changed after later reads", i)
		}
	}
}

func FuzzAppendFrames(f *testing.F) {
	f.Add(uint8(2), int64(1_764_000_000_000), uint64(1), []byte("ciphertext"), byte(1))
	f.Add(uint8(0), int64(0), uint64(0), []byte{}, byte(0))
	f.Add(uint8(255), int64(-1), uint64(math.MaxUint64), bytes.Repeat([]byte{1}, 300), byte(0xff))
	f.Fuzz(func(t *testing.T, version uint8, ts int64, seq uint64, ct []byte, fill byte) {
		e := &channel.Envelope{Version: version, Timestamp: ts, Ciphertext: ct}
		for i := range e.Channel {
			e.Channel[i] = fill + byte(i)
		}
		for i := range e.Nonce {
			e.Nonce[i] = fill ^ byte(i)
		}
		for i := range e.Signature {
			e.Signature[i] = fill * byte(i)
		}
		checkFrames(t, e, seq)
	})
}

// BenchmarkFrames compares the relay path's frame encodings with the
// protobuf path they replace, for a 200-byte message.
func BenchmarkFrames(b *testing.B) {
	e := fixedEnvelope()
	e.Ciphertext = make([]byte, 256+48)
	raw, _ := e.MarshalBinary()
	b.Run("push/proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fb, _ := proto.Marshal(pushPB(7, e))
			buf := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(fb)), uint64(len(fb)))
			_ = append(buf, fb...)
		}
	})
	b.Run("push/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = AppendPushFrame(nil, 7, e)
		}
	})
	b.Run("serve-stored/proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, _ := channel.UnmarshalEnvelope(raw)
			fb, _ := proto.Marshal(bodyPB(d))
			buf := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(fb)), uint64(len(fb)))
			_ = append(buf, fb...)
		}
	})
	b.Run("serve-stored/view-append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := channel.ViewEnvelope(raw)
			_ = AppendBodyFrame(nil, &v)
		}
	})
	frame := viaProto(b, pushPB(7, e))
	b.Run("read-push/ReadSync", func(b *testing.B) {
		b.ReportAllocs()
		r := bytes.NewReader(frame)
		for b.Loop() {
			r.Reset(frame)
			in, _, err := ReadSync(r, MaxFrameSize)
			if err != nil || in.Envelope == nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-push/ReadSyncFrame", func(b *testing.B) {
		b.ReportAllocs()
		r := bytes.NewReader(frame)
		for b.Loop() {
			r.Reset(frame)
			f, _, err := ReadSyncFrame(r, MaxFrameSize)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := EnvelopeFromPB(f.GetPush().GetEnvelope()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
