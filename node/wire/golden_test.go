package wire

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt from the current encoder")

// fixedEnvelope is built from fixed bytes only, so its encodings never
// change unless the wire format does. The signature is a fixed pattern:
// these vectors pin the encoding, not the cryptography (node/channel's own
// vectors pin that).
func fixedEnvelope() *channel.Envelope {
	e := &channel.Envelope{Version: channel.Version, Timestamp: 1_764_000_000_000}
	for i := range e.Channel {
		e.Channel[i] = byte(i)
	}
	for i := range e.Nonce {
		e.Nonce[i] = byte(0xa0 + i)
	}
	for i := range e.Signature {
		e.Signature[i] = byte(0xff - i)
	}
	e.Ciphertext = []byte("redPanda golden ciphertext")
	return e
}

// goldenTime is the fixed clock of the sealed vector.
var goldenTime = time.UnixMilli(1_764_000_000_000)

// detReader is a deterministic byte stream: SHA-256 in counter mode over
// a label, standing in for crypto/rand.
type detReader struct {
	label string
	n     uint64
	buf   []byte
}

func (d *detReader) Read(p []byte) (int, error) {
	for i := range p {
		if len(d.buf) == 0 {
			h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", d.label, d.n))
			d.n++
			d.buf = h[:]
		}
		p[i], d.buf = d.buf[0], d.buf[1:]
	}
	return len(p), nil
}

// sealedEnvelope is a real message, sealed by node/channel from a fixed
// root secret, author seed, clock and randomness: it passes Validate, so
// an implementation in another language can check its verifier on it.
func sealedEnvelope(t *testing.T) *channel.Envelope {
	t.Helper()
	secret := sha256.Sum256([]byte("redpanda golden channel"))
	key, err := channel.KeyFromSecret(secret[:])
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("redpanda golden author"))
	author, err := channel.IdentityFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	e, err := key.Seal(author, channel.KindText, []byte("hello, redPanda"), goldenTime, &detReader{label: "golden"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func goldenVectors(t *testing.T) [][2]string {
	sealed := sealedEnvelope(t)
	sealedRaw, _ := sealed.MarshalBinary()
	sealedID := sealed.ID()
	e := fixedEnvelope()
	id := e.ID()
	canon, _ := e.MarshalBinary()
	pe := EnvelopeToPB(e)
	h := Header{ID: id, Channel: e.Channel, Timestamp: e.Timestamp, Size: uint32(e.Size())}
	frames := []struct {
		name string
		f    *wirepb.Frame
	}{
		{"frame.hello", &wirepb.Frame{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: "golden", Want: [][]byte{e.Channel[:]}, MaxInFlight: 64}}}},
		{"frame.hello.light", &wirepb.Frame{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: "golden", Want: [][]byte{e.Channel[:]}, MaxInFlight: 64, Light: true}}}},
		{"frame.announce", &wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: []*wirepb.Header{HeaderToPB(h)}}}}},
		{"frame.fetch", &wirepb.Frame{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{Ids: [][]byte{id[:]}}}}},
		{"frame.push", &wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 7, Envelope: pe}}}},
		{"frame.ack", &wirepb.Frame{Kind: &wirepb.Frame_Ack{Ack: &wirepb.Ack{Seq: 7, Id: id[:]}}}},
		{"frame.reject", &wirepb.Frame{Kind: &wirepb.Frame_Reject{Reject: &wirepb.Reject{Seq: 7, Id: id[:], Reason: wirepb.Reason_REASON_EXPIRED, Detail: "expired"}}}},
		{"frame.reconcile", &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: e.Channel[:], Ranges: []*wirepb.Range{
			{FromMs: 1_763_395_200_000, ToMs: 1_764_000_000_000, Mode: &wirepb.Range_Fingerprint{Fingerprint: &wirepb.Fingerprint{Count: 1, Xor: id[:]}}},
			{FromMs: 1_764_000_000_000, ToMs: 1_764_000_060_001, Mode: &wirepb.Range_Ids{Ids: &wirepb.IDList{Ids: [][]byte{id[:]}}}},
		}}}}},
	}
	out := [][2]string{
		{"sealed.canonical", hex.EncodeToString(sealedRaw)},
		{"sealed.id", hex.EncodeToString(sealedID[:])},
		{"sealed.pb", hex.EncodeToString(mustMarshal(t, EnvelopeToPB(sealed)))},
		{"envelope.canonical", hex.EncodeToString(canon)},
		{"envelope.id", hex.EncodeToString(id[:])},
		{"envelope.pb", hex.EncodeToString(mustMarshal(t, pe))},
	}
	for _, f := range frames {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, mustMarshal(t, f.f)); err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{f.name, hex.EncodeToString(buf.Bytes())})
	}
	return out
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.txt")
	got := goldenVectors(t)
	if *update {
		var b strings.Builder
		b.WriteString("# name hex — regenerate with: go test ./node/wire -run TestGolden -update\n")
		for _, v := range got {
			fmt.Fprintf(&b, "%s %s\n", v[0], v[1])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		want[name] = h
	}
	if len(want) != len(got) {
		t.Fatalf("golden file has %d vectors, encoder makes %d", len(want), len(got))
	}
	for _, v := range got {
		if want[v[0]] != v[1] {
			t.Errorf("%s:\n got %s\nwant %s", v[0], v[1], want[v[0]])
		}
	}

	// The golden frames decode, and the envelope comes back with its ID.
	for _, v := range got {
		if !strings.HasPrefix(v[0], "frame.") {
			continue
		}
		raw, _ := hex.DecodeString(want[v[0]])
		if _, _, err := ReadSyncFrame(bytes.NewReader(raw), MaxFrameSize); err != nil {
			t.Errorf("%s does not decode: %v", v[0], err)
		}
	}
	// The sealed vector is a valid message at its clock.
	sealedBytes, _ := hex.DecodeString(want["sealed.canonical"])
	se, err := channel.UnmarshalEnvelope(sealedBytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := channel.Validate(se, goldenTime, channel.Policy{}); err != nil {
		t.Errorf("sealed vector does not validate: %v", err)
	}
	raw, _ := hex.DecodeString(want["envelope.pb"])
	var pe wirepb.Envelope
	if err := proto.Unmarshal(raw, &pe); err != nil {
		t.Fatal(err)
	}
	e, err := EnvelopeFromPB(&pe)
	if err != nil {
		t.Fatal(err)
	}
	if id := e.ID(); hex.EncodeToString(id[:]) != want["envelope.id"] {
		t.Errorf("decoded envelope has ID %x, want %s", id, want["envelope.id"])
	}
}
