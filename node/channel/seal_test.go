package channel

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestSealOpenRoundTrip(t *testing.T) {
	c := newTestChannel(t, 10)
	bodies := map[string][]byte{
		"empty":       nil,
		"small":       []byte("hello, panda"),
		"bucket-edge": bytes.Repeat([]byte{'x'}, 256-innerHeader),
		"max":         bytes.Repeat([]byte{'y'}, MaxBody),
	}
	tests := []struct {
		writer  Capability
		sealed  bool
		readers []Capability // can open
		blind   []Capability // cannot
	}{
		{CapabilityFull, false, []Capability{CapabilityFull, CapabilityRead}, []Capability{CapabilityWrite}},
		{CapabilityWrite, true, []Capability{CapabilityFull, CapabilityRead}, []Capability{CapabilityWrite}},
	}
	r := detRand(11)
	for _, tt := range tests {
		for name, body := range bodies {
			t.Run(tt.writer.String()+"/"+name, func(t *testing.T) {
				e, err := c.key(tt.writer).Seal(c.author, KindText, body, testNow, r)
				if err != nil {
					t.Fatal(err)
				}
				if err := Validate(e, testNow, Policy{}); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				raw, _ := e.MarshalBinary()
				if len(raw) != e.Size() || len(raw) > MaxEnvelopeSize {
					t.Fatalf("encoded %d bytes, Size %d, max %d", len(raw), e.Size(), MaxEnvelopeSize)
				}
				e2, err := UnmarshalEnvelope(raw)
				if err != nil {
					t.Fatal(err)
				}
				for _, rc := range tt.readers {
					m, err := c.key(rc).Open(e2)
					if err != nil {
						t.Fatalf("%s reader: %v", rc, err)
					}
					if !bytes.Equal(m.Body, body) || m.Kind != KindText || m.Author != c.author.Public() ||
						!m.Timestamp.Equal(testNow) || m.ID != e.ID() || m.Channel != c.full.ID() || m.Sealed != tt.sealed {
						t.Fatalf("%s reader got %+v", rc, m)
					}
				}
				for _, rc := range tt.blind {
					if _, err := c.key(rc).Open(e2); !errors.Is(err, ErrCannotRead) {
						t.Fatalf("%s opened a message: %v", rc, err)
					}
				}
			})
		}
	}
}

// TestWriteOnlyCannotReadItsOwnMessage gives the writer's capability every
// chance: even with the read path forced (a key built from its own
// material), the sealed message does not decrypt without the sealing
// private key.
func TestWriteOnlyCannotReadItsOwnMessage(t *testing.T) {
	c := newTestChannel(t, 12)
	e, err := c.write.Seal(c.author, KindText, []byte("debug report"), testNow, detRand(13))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.write.Open(e); !errors.Is(err, ErrCannotRead) {
		t.Fatalf("write-only Open: %v", err)
	}
	// Everything a write-only key string holds, used as read material.
	guess := *c.write
	seed := c.write.write.Seed()
	guess.readKey = (*[SecretSize]byte)(seed)
	guess.sealPriv, _ = c.read.sealPriv.Curve().NewPrivateKey(seed)
	if _, err := guess.Open(e); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("write-only material opened its own message: %v", err)
	}
	if m, err := c.full.Open(e); err != nil || string(m.Body) != "debug report" {
		t.Fatalf("full member: %v", err)
	}
}

func TestReadOnlyCannotWrite(t *testing.T) {
	c := newTestChannel(t, 14)
	if _, err := c.read.Seal(c.author, KindText, []byte("x"), testNow, detRand(15)); !errors.Is(err, ErrCannotWrite) {
		t.Fatalf("read-only Seal: %v", err)
	}
	// A read-only member forging a message: it encrypts correctly with the
	// read key but can only sign with a key that is not the channel's.
	other, _ := NewKey(detRand(16))
	forger := *c.read
	forger.write = other.write
	e, err := forger.Seal(c.author, KindText, []byte("forged"), testNow, detRand(17))
	if err != nil {
		t.Fatal(err)
	}
	if e.Channel != c.full.ID() {
		t.Fatal("forgery does not claim the channel")
	}
	if err := Validate(e, testNow, Policy{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Validate(forged) = %v, want ErrBadSignature", err)
	}
	if _, err := c.full.Open(e); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Open(forged) = %v, want ErrBadSignature", err)
	}
	// Signing honestly with its own key makes it another channel's message.
	forger.id = other.id
	e, err = forger.Seal(c.author, KindText, []byte("forged"), testNow, detRand(17))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.full.Open(e); !errors.Is(err, ErrWrongChannel) {
		t.Fatalf("Open(other channel) = %v, want ErrWrongChannel", err)
	}
}

func TestFlipEveryByte(t *testing.T) {
	c := newTestChannel(t, 18)
	for _, w := range []Capability{CapabilityFull, CapabilityWrite} {
		e, err := c.key(w).Seal(c.author, KindText, []byte("flip me"), testNow, detRand(19))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := e.MarshalBinary()
		for i := range raw {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := bytes.Clone(raw)
				b[i] ^= mask
				e2, err := UnmarshalEnvelope(b)
				if err != nil {
					continue // rejected at decoding
				}
				if err := Validate(e2, testNow, Policy{}); err == nil {
					t.Fatalf("%s: byte %d ^ %#x passes Validate", w, i, mask)
				}
				if _, err := c.full.Open(e2); err == nil {
					t.Fatalf("%s: byte %d ^ %#x opens", w, i, mask)
				}
			}
		}
	}
}

func TestCrossChannelReplay(t *testing.T) {
	a := newTestChannel(t, 20)
	b := newTestChannel(t, 21)
	for _, w := range []Capability{CapabilityFull, CapabilityWrite} {
		e, err := a.key(w).Seal(a.author, KindText, []byte("for A only"), testNow, detRand(22))
		if err != nil {
			t.Fatal(err)
		}
		// A relay moves it into B without re-signing.
		moved := *e
		moved.Channel = b.full.ID()
		if err := Validate(&moved, testNow, Policy{}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: moved envelope: %v, want ErrBadSignature", w, err)
		}
		// A member of both channels re-signs it with B's write key: it
		// passes relays, but B's members cannot open it.
		moved.Signature = [SignatureSize]byte(ed25519.Sign(b.full.write, moved.signingInput()))
		if err := Validate(&moved, testNow, Policy{}); err != nil {
			t.Fatalf("%s: re-signed: %v", w, err)
		}
		for _, rc := range []Capability{CapabilityFull, CapabilityRead} {
			if _, err := b.key(rc).Open(&moved); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s into B, %s reader: %v, want ErrDecrypt", w, rc, err)
			}
		}
		// Same channel, other time: the timestamp is bound too.
		shifted := *e
		shifted.Timestamp++
		shifted.Signature = [SignatureSize]byte(ed25519.Sign(a.full.write, shifted.signingInput()))
		if _, err := a.full.Open(&shifted); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: re-timed: %v, want ErrDecrypt", w, err)
		}
	}
}

func TestAuthorSignature(t *testing.T) {
	c := newTestChannel(t, 23)
	e, err := c.full.Seal(c.author, KindText, []byte("by me"), testNow, detRand(24))
	if err != nil {
		t.Fatal(err)
	}
	// A member re-encrypts the plaintext claiming another author.
	pt, err := c.full.newAEAD().Open(nil, e.Nonce[:], e.Ciphertext[slotSize:], additionalData(e, e.Ciphertext[:slotSize]))
	if err != nil {
		t.Fatal(err)
	}
	impostor, _ := NewIdentity(detRand(25))
	p := impostor.Public()
	copy(pt[1:], p[:])
	e.Ciphertext = c.full.newAEAD().Seal(e.Ciphertext[:slotSize:slotSize], e.Nonce[:], pt, additionalData(e, e.Ciphertext[:slotSize]))
	e.Signature = [SignatureSize]byte(ed25519.Sign(c.full.write, e.signingInput()))
	if _, err := c.full.Open(e); !errors.Is(err, ErrBadAuthor) {
		t.Fatalf("Open(impostor) = %v, want ErrBadAuthor", err)
	}
}

func TestSealErrors(t *testing.T) {
	c := newTestChannel(t, 26)
	tests := []struct {
		name   string
		author *Identity
		kind   ContentKind
		body   []byte
		want   error
	}{
		{"too large", c.author, KindText, make([]byte, MaxBody+1), ErrTooLarge},
		{"no author", nil, KindText, nil, nil},
		{"bad kind", c.author, 0, nil, nil},
		{"bad kind high", c.author, KindDust + 1, nil, nil},
	}
	for _, tt := range tests {
		_, err := c.full.Seal(tt.author, tt.kind, tt.body, testNow, detRand(27))
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := c.full.Seal(c.author, KindText, nil, testNow, bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("Seal with exhausted randomness succeeded")
	}
}

func TestSizesAreBuckets(t *testing.T) {
	c := newTestChannel(t, 28)
	for _, n := range []int{0, 1, 155, 156, 1000, 4000, 16000, MaxBody} {
		full, _ := c.full.Seal(c.author, KindText, make([]byte, n), testNow, detRand(29))
		sealed, _ := c.write.Seal(c.author, KindDust, make([]byte, n), testNow, detRand(29))
		if full.Size() != sealed.Size() {
			t.Fatalf("body %d: symmetric %d bytes, sealed %d", n, full.Size(), sealed.Size())
		}
		if !validCiphertextLen(len(full.Ciphertext)) {
			t.Fatalf("body %d: ciphertext %d is not a bucket", n, len(full.Ciphertext))
		}
	}
}

func TestValidate(t *testing.T) {
	c := newTestChannel(t, 30)
	good, err := c.full.Seal(c.author, KindText, []byte("v"), testNow, detRand(31))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(e *Envelope)) *Envelope {
		e := *good
		e.Ciphertext = bytes.Clone(good.Ciphertext)
		f(&e)
		return &e
	}
	tests := []struct {
		name string
		e    *Envelope
		now  time.Time
		p    Policy
		want error
	}{
		{"ok", good, testNow, Policy{}, nil},
		{"nil", nil, testNow, Policy{}, ErrMalformed},
		{"version", mod(func(e *Envelope) { e.Version = 1 }), testNow, Policy{}, ErrBadVersion},
		{"too large", mod(func(e *Envelope) { e.Ciphertext = make([]byte, MaxCiphertext+1) }), testNow, Policy{}, ErrTooLarge},
		{"not a bucket", mod(func(e *Envelope) { e.Ciphertext = e.Ciphertext[:100] }), testNow, Policy{}, ErrMalformed},
		{"just inside age", good, testNow.Add(DefaultMaxAge), Policy{}, nil},
		{"expired", good, testNow.Add(DefaultMaxAge + time.Millisecond), Policy{}, ErrExpired},
		{"custom age", good, testNow.Add(time.Hour + time.Millisecond), Policy{MaxAge: time.Hour}, ErrExpired},
		{"just inside skew", good, testNow.Add(-DefaultMaxSkew), Policy{}, nil},
		{"from future", good, testNow.Add(-DefaultMaxSkew - time.Millisecond), Policy{}, ErrFromFuture},
		{"custom skew", good, testNow.Add(-time.Minute), Policy{MaxSkew: time.Second}, ErrFromFuture},
		{"clock ignored old", good, testNow.Add(365 * 24 * time.Hour), Policy{IgnoreClock: true}, nil},
		{"clock ignored future", good, time.Unix(0, 0), Policy{IgnoreClock: true}, nil},
		{"signature", mod(func(e *Envelope) { e.Signature[0] ^= 1 }), testNow, Policy{}, ErrBadSignature},
		{"signature clock ignored", mod(func(e *Envelope) { e.Ciphertext[40] ^= 1 }), testNow, Policy{IgnoreClock: true}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.e, tt.now, tt.p)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			// Revalidate says the same, but for the signature it
			// leaves to the caller's earlier Validate.
			want := tt.want
			if want == ErrBadSignature {
				want = nil
			}
			verr := err
			err = Revalidate(tt.e, tt.now, tt.p)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("Revalidate = %v, want %v", err, want)
			}
			// ValidateUnsigned too, with Validate's very text.
			uerr := ValidateUnsigned(tt.e, tt.now, tt.p)
			if want == nil && uerr != nil || want != nil && (uerr == nil || uerr.Error() != verr.Error()) {
				t.Fatalf("ValidateUnsigned = %v, Validate = %v", uerr, verr)
			}
		})
	}
}

func TestUnmarshalEnvelopeErrors(t *testing.T) {
	c := newTestChannel(t, 32)
	e, _ := c.full.Seal(c.author, KindText, nil, testNow, detRand(33))
	raw, _ := e.MarshalBinary()
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", raw[:headerSize], ErrMalformed},
		{"truncated", raw[:len(raw)-1], ErrMalformed},
		{"trailing", append(bytes.Clone(raw), 0), ErrMalformed},
		{"oversize", make([]byte, MaxEnvelopeSize+1), ErrTooLarge},
	}
	for _, tt := range tests {
		if _, err := UnmarshalEnvelope(tt.b); !errors.Is(err, tt.want) {
			t.Fatalf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestUnmarshalEnvelopeOversizeAllocatesLittle checks that the cap is
// checked before anything is allocated: a 16 MiB input costs bytes, not
// megabytes.
func TestUnmarshalEnvelopeOversizeAllocatesLittle(t *testing.T) {
	big := make([]byte, 16<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := UnmarshalEnvelope(big); !errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Fatalf("10 rejected oversize envelopes allocated %d bytes", d)
	}
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	c := newTestChannel(f, 34)
	for i, w := range []Capability{CapabilityFull, CapabilityWrite} {
		e, err := c.key(w).Seal(c.author, KindText, []byte("seed"), testNow, detRand(byte(35+i)))
		if err != nil {
			f.Fatal(err)
		}
		raw, _ := e.MarshalBinary()
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add(make([]byte, headerSize+SignatureSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, verr := ViewEnvelope(b)
		e, err := UnmarshalEnvelope(b)
		if (verr == nil) != (err == nil) {
			t.Fatalf("view: %v, unmarshal: %v", verr, err)
		}
		if err != nil {
			return
		}
		if v.ID() != e.ID() {
			t.Fatal("view and decoded envelope differ")
		}
		if cap(e.Ciphertext) > MaxCiphertext {
			t.Fatalf("ciphertext capacity %d over the cap", cap(e.Ciphertext))
		}
		back, _ := e.MarshalBinary()
		if !bytes.Equal(back, b) {
			t.Fatal("decode/encode is not the identity")
		}
		id := MessageID(sha256.Sum256(b))
		clear(b) // the envelope must not alias its input
		if e.ID() != id {
			t.Fatal("ID is not the hash of the decoded bytes")
		}
		_ = Validate(e, testNow, Policy{})
		if m, err := c.full.Open(e); err == nil && Validate(e, testNow, Policy{IgnoreClock: true}) != nil {
			t.Fatalf("opened %+v but it does not validate", m)
		}
	})
}

func FuzzDecodePlaintext(f *testing.F) {
	c := newTestChannel(f, 36)
	e, _ := c.full.Seal(c.author, KindText, []byte("seed"), testNow, detRand(37))
	pt, err := c.full.newAEAD().Open(nil, e.Nonce[:], e.Ciphertext[slotSize:], additionalData(e, e.Ciphertext[:slotSize]))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pt)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pt []byte) {
		m, sig, err := decodePlaintext(pt)
		if err != nil {
			return
		}
		if len(sig) != ed25519.SignatureSize || len(m.Body) > len(pt)-innerHeader || !m.Kind.Valid() {
			t.Fatalf("accepted inconsistent plaintext: %+v", m)
		}
	})
}
