package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

func TestReadFrame(t *testing.T) {
	prefix := func(n uint64) []byte { return binary.AppendUvarint(nil, n) }
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []byte
		wantErr error
	}{
		{"empty frame", prefix(0), 10, []byte{}, nil},
		{"small frame", append(prefix(3), 1, 2, 3), 10, []byte{1, 2, 3}, nil},
		{"at cap", append(prefix(4), 1, 2, 3, 4), 4, []byte{1, 2, 3, 4}, nil},
		{"over cap", append(prefix(5), 1, 2, 3, 4, 5), 4, nil, ErrFrameTooLarge},
		{"huge prefix", prefix(1 << 62), MaxFrameSize, nil, ErrFrameTooLarge},
		{"clean EOF", nil, 10, nil, io.EOF},
		{"EOF in body", append(prefix(3), 1), 10, nil, io.ErrUnexpectedEOF},
		{"EOF in prefix", []byte{0x80}, 10, nil, io.ErrUnexpectedEOF},
		{"overlong prefix", bytes.Repeat([]byte{0xff}, 11), 10, nil, ErrMalformedFrame},
		{"non-minimal prefix", []byte{0x81, 0x00, 1}, 10, nil, ErrMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	frames := []*wirepb.Frame{
		{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: "test", Want: [][]byte{make([]byte, 32)}, MaxInFlight: 64}}},
		{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{Ids: [][]byte{bytes.Repeat([]byte{7}, 32)}}}},
		{Kind: &wirepb.Frame_Reject{Reject: &wirepb.Reject{Seq: 9, Reason: wirepb.Reason_REASON_EXPIRED, Detail: "old"}}},
	}
	for _, f := range frames {
		if err := WriteMsg(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range frames {
		got, _, err := ReadSyncFrame(&buf, MaxFrameSize)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, _, err := ReadSyncFrame(&buf, MaxFrameSize); !errors.Is(err, io.EOF) {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	id := bytes.Repeat([]byte{1}, 32)
	many := make([][]byte, MaxIDsPerFrame+1)
	for i := range many {
		many[i] = id
	}
	tests := []struct {
		name string
		f    *wirepb.Frame
	}{
		{"no kind", &wirepb.Frame{}},
		{"short want", &wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: [][]byte{{1, 2}}}}}},
		{"empty fetch", &wirepb.Frame{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{}}}},
		{"too many ids", &wirepb.Frame{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{Ids: many}}}},
		{"body without envelope", &wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{}}}},
		{"push without envelope", &wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 1}}}},
		{"empty announce", &wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{}}}},
		{"bad header", &wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: []*wirepb.Header{{Id: id}}}}}},
		{"bad ack", &wirepb.Frame{Kind: &wirepb.Frame_Ack{Ack: &wirepb.Ack{Id: []byte{1}}}}},
		{"empty range", &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: id, Ranges: []*wirepb.Range{
			{FromMs: 5, ToMs: 5, Mode: &wirepb.Range_Ids{Ids: &wirepb.IDList{}}}}}}}},
		{"range without mode", &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: id, Ranges: []*wirepb.Range{
			{FromMs: 1, ToMs: 5}}}}}},
		{"short fingerprint", &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: id, Ranges: []*wirepb.Range{
			{FromMs: 1, ToMs: 5, Mode: &wirepb.Range_Fingerprint{Fingerprint: &wirepb.Fingerprint{Count: 1, Xor: id[:3]}}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeFrame(b); !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("DecodeFrame = %v, want ErrMalformedFrame", err)
			}
		})
	}
	if _, err := DecodeFrame([]byte{0xff, 0xff, 0xff}); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("garbage: %v, want ErrMalformedFrame", err)
	}
}

// countingReader fails the test if ReadFrame reads more than it may.
type limitedSource struct {
	r    *bytes.Reader
	read int
}

func (l *limitedSource) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += n
	return n, err
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(bytes.Repeat([]byte{0x80}, 12))
	const max = 64
	f.Fuzz(func(t *testing.T, in []byte) {
		src := &limitedSource{r: bytes.NewReader(in)}
		b, err := ReadFrame(src, max)
		if err != nil {
			if b != nil {
				t.Fatal("bytes returned with an error")
			}
			// Nothing past a prefix (at most 10 bytes) plus the capped body is read.
			if src.read > binary.MaxVarintLen64+max {
				t.Fatalf("read %d bytes for a failed frame", src.read)
			}
			return
		}
		if len(b) > max {
			t.Fatalf("frame of %d bytes over cap %d", len(b), max)
		}
		var again bytes.Buffer
		if err := WriteFrame(&again, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), in[:src.read]) {
			t.Fatalf("re-encoding %x gives %x", in[:src.read], again.Bytes())
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range []*wirepb.Frame{
		{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Want: [][]byte{make([]byte, 32)}}}},
		{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Want: [][]byte{make([]byte, 32)}, Light: true}}},
		{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 1, Envelope: &wirepb.Envelope{Version: 2, Channel: make([]byte, 32)}}}},
		{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: make([]byte, 32), Ranges: []*wirepb.Range{
			{FromMs: 1, ToMs: 9, Mode: &wirepb.Range_Fingerprint{Fingerprint: &wirepb.Fingerprint{Count: 3, Xor: make([]byte, 32)}}}}}}},
	} {
		b, _ := proto.Marshal(fr)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := DecodeFrame(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error %v is not ErrMalformedFrame", err)
			}
			return
		}
		// A frame that passed the check converts without error.
		switch k := fr.GetKind().(type) {
		case *wirepb.Frame_Push:
			_, _ = EnvelopeFromPB(k.Push.GetEnvelope())
		case *wirepb.Frame_Body:
			_, _ = EnvelopeFromPB(k.Body.GetEnvelope())
		case *wirepb.Frame_Announce:
			for _, h := range k.Announce.GetHeaders() {
				if _, err := HeaderFromPB(h); err != nil {
					t.Fatalf("checked header fails conversion: %v", err)
				}
			}
		}
	})
}

func FuzzEnvelopeFromPB(f *testing.F) {
	b, _ := proto.Marshal(&wirepb.Envelope{Version: 2, Channel: make([]byte, 32), Nonce: make([]byte, 24), Signature: make([]byte, 64), Ciphertext: []byte("x")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		var p wirepb.Envelope
		if proto.Unmarshal(in, &p) != nil {
			return
		}
		e, err := EnvelopeFromPB(&p)
		if err != nil {
			return
		}
		// A converted envelope survives the round trip exactly.
		back, err := EnvelopeFromPB(EnvelopeToPB(e))
		if err != nil {
			t.Fatal(err)
		}
		if back.ID() != e.ID() {
			t.Fatal("round trip changed the message ID")
		}
	})
}
