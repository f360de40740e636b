package channel

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// fieldsOnly is a copy of e with the same fields and no kept encoding:
// what e encodes to when nothing is kept.
func fieldsOnly(e *Envelope) *Envelope {
	return &Envelope{Version: e.Version, Channel: e.Channel, Timestamp: e.Timestamp, Nonce: e.Nonce,
		Ciphertext: bytes.Clone(e.Ciphertext), Signature: e.Signature}
}

// TestKeptEncoding: however an envelope was made, and whatever field is
// changed afterwards (in place or replaced), its ID, encoding and checks
// are those of its current fields: a kept encoding never outlives a
// change, and a tampered envelope fails its signature check.
func TestKeptEncoding(t *testing.T) {
	c := newTestChannel(t, 60)
	sealed := func(t *testing.T) *Envelope {
		e, err := c.full.Seal(c.author, KindText, []byte("kept"), testNow, detRand(61))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	makers := []struct {
		name string
		make func(t *testing.T) *Envelope
	}{
		{"seal", sealed},
		{"unmarshal", func(t *testing.T) *Envelope {
			raw, _ := sealed(t).MarshalBinary()
			e, err := UnmarshalEnvelope(raw)
			if err != nil {
				t.Fatal(err)
			}
			clear(raw) // the decoded envelope must not alias its input
			return e
		}},
		{"clone of fields", func(t *testing.T) *Envelope { return fieldsOnly(sealed(t)).Clone() }},
		{"clone of sealed", func(t *testing.T) *Envelope {
			s := sealed(t)
			e := s.Clone()
			s.Ciphertext[0] ^= 1 // the clone shares nothing with its source
			s.Signature[0] ^= 1
			return e
		}},
		{"copy by value", func(t *testing.T) *Envelope { c := *sealed(t); return &c }},
	}
	mutations := []struct {
		name    string
		mutate  func(e *Envelope)
		wantErr error // from Validate; nil: still valid
	}{
		{"none", func(*Envelope) {}, nil},
		{"same ciphertext, new slice", func(e *Envelope) { e.Ciphertext = bytes.Clone(e.Ciphertext) }, nil},
		{"version", func(e *Envelope) { e.Version++ }, ErrBadVersion},
		{"channel", func(e *Envelope) { e.Channel[7] ^= 1 }, ErrBadSignature},
		{"timestamp", func(e *Envelope) { e.Timestamp++ }, ErrBadSignature},
		{"nonce", func(e *Envelope) { e.Nonce[3] ^= 1 }, ErrBadSignature},
		{"ciphertext in place", func(e *Envelope) { e.Ciphertext[len(e.Ciphertext)-1] ^= 1 }, ErrBadSignature},
		{"ciphertext replaced", func(e *Envelope) {
			ct := bytes.Clone(e.Ciphertext)
			ct[5] ^= 0x80
			e.Ciphertext = ct
		}, ErrBadSignature},
		{"ciphertext shortened", func(e *Envelope) { e.Ciphertext = e.Ciphertext[:len(e.Ciphertext)-1] }, ErrMalformed},
		{"signature", func(e *Envelope) { e.Signature[63] ^= 1 }, ErrBadSignature},
	}
	for _, mk := range makers {
		for _, mu := range mutations {
			t.Run(mk.name+"/"+mu.name, func(t *testing.T) {
				e := mk.make(t)
				if mk.name != "copy by value" && e.kept() == nil {
					t.Fatal("a made envelope keeps no encoding")
				}
				held := e.Encoding()
				before := bytes.Clone(held)
				mu.mutate(e)
				if !bytes.Equal(held, before) {
					t.Fatal("a change of the envelope changed the bytes Encoding returned before it")
				}
				ref := fieldsOnly(e)
				want, _ := ref.MarshalBinary()
				got, _ := e.MarshalBinary()
				if !bytes.Equal(got, want) {
					t.Fatal("MarshalBinary is not the encoding of the current fields")
				}
				enc := e.Encoding()
				if !bytes.Equal(enc, want) || cap(enc) != len(enc) {
					t.Fatalf("Encoding is not the encoding of the current fields (or can be appended to in place: cap %d, len %d)", cap(enc), len(enc))
				}
				if e.kept() != nil && &e.Encoding()[0] != &enc[0] {
					t.Fatal("Encoding copied a kept encoding")
				}
				if e.ID() != MessageID(sha256.Sum256(want)) {
					t.Fatal("ID is not the hash of the current fields")
				}
				if !bytes.Equal(e.signingInput(), ref.signingInput()) {
					t.Fatal("signing input is not that of the current fields")
				}
				err := Validate(e, testNow, Policy{})
				if !errors.Is(err, mu.wantErr) || (mu.wantErr == nil) != (err == nil) {
					t.Fatalf("Validate: %v, want %v", err, mu.wantErr)
				}
				_, err = c.full.Open(e)
				if (mu.wantErr == nil) != (err == nil) {
					t.Fatalf("Open: %v, want an error: %v", err, mu.wantErr != nil)
				}
				// What MarshalBinary returns is the caller's.
				got[0] ^= 0xff
				if e.ID() != MessageID(sha256.Sum256(want)) {
					t.Fatal("changing MarshalBinary's result changed the ID")
				}
			})
		}
	}
}

// BenchmarkEnvelopeID is the cost of a message ID on the relay path, for
// an envelope as decoded (kept encoding) and one built field by field.
func BenchmarkEnvelopeID(b *testing.B) {
	c := newTestChannel(b, 62)
	e, err := c.full.Seal(c.author, KindText, make([]byte, 200), testNow, detRand(63))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		e    *Envelope
	}{{"kept", e}, {"fields", fieldsOnly(e)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = tc.e.ID()
			}
		})
	}
}

// BenchmarkUnmarshalEnvelope decodes a stored envelope and takes its ID,
// as serving and reading a stored message does.
func BenchmarkUnmarshalEnvelope(b *testing.B) {
	c := newTestChannel(b, 64)
	e, err := c.full.Seal(c.author, KindText, make([]byte, 200), testNow, detRand(65))
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := e.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		e, err := UnmarshalEnvelope(raw)
		if err != nil {
			b.Fatal(err)
		}
		_ = e.ID()
	}
}

// TestViewEnvelope: a view has the fields UnmarshalEnvelope decodes,
// refuses what it refuses for the same reason, and allocates nothing.
func TestViewEnvelope(t *testing.T) {
	c := newTestChannel(t, 66)
	e, err := c.full.Seal(c.author, KindText, []byte("view"), testNow, detRand(67))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := e.MarshalBinary()
	bad := bytes.Clone(raw)
	bad[headerSize-1]++ // ciphertext length field
	tests := []struct {
		name    string
		b       []byte
		wantErr error
	}{
		{"sealed", raw, nil},
		{"empty", nil, ErrMalformed},
		{"short", raw[:headerSize+SignatureSize-1], ErrMalformed},
		{"length field", bad, ErrMalformed},
		{"too large", make([]byte, MaxEnvelopeSize+1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ViewEnvelope(tc.b)
			u, uerr := UnmarshalEnvelope(tc.b)
			if !errors.Is(err, tc.wantErr) || !errors.Is(uerr, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("view: %v, unmarshal: %v, want %v", err, uerr, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got, _ := v.MarshalBinary(); !bytes.Equal(got, tc.b) || v.ID() != u.ID() {
				t.Fatal("view differs from the decoded envelope")
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = ViewEnvelope(tc.b) }); n != 0 {
				t.Fatalf("ViewEnvelope allocates %.0f times", n)
			}
		})
	}
}
