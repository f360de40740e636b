package channel

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// order8 is a point of order 8.
var order8 = func() *edwards25519.Point {
	b := []byte{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		panic(err)
	}
	return p
}()

// torsionSign signs msg with priv as Ed25519 does, but with a point of
// order 8 added to R: R = [r]B + T, S = r + k·a. The cofactored equation
// (ZIP 215) accepts it; crypto/ed25519's cofactorless one does not. Only
// the private key's holder can make one.
func torsionSign(priv ed25519.PrivateKey, msg []byte, nonce byte) []byte {
	h := sha512.Sum512(priv.Seed())
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	var wide [64]byte
	wide[0] = nonce
	wide[1] = 1
	r, _ := edwards25519.NewScalar().SetUniformBytes(wide[:])
	R := new(edwards25519.Point).ScalarBaseMult(r)
	R.Add(R, order8)
	rb := R.Bytes()
	kh := sha512.New()
	kh.Write(rb)
	kh.Write(priv.Public().(ed25519.PublicKey))
	kh.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(rb, s.Bytes()...)
}

// mixedEnvelopes are envelopes whose write signatures are, in turn:
// valid, one bit flipped, valid but with a small-order R (ZIP 215 accepts,
// crypto/ed25519 refuses), over a ciphertext changed after signing, and by
// a channel ID that is no curve point; over several channels.
func mixedEnvelopes(t testing.TB, n int) []*Envelope {
	t.Helper()
	chans := make([]testChannel, 4)
	for i := range chans {
		chans[i] = newTestChannel(t, byte(60+i))
	}
	envs := make([]*Envelope, n)
	for i := range envs {
		c := chans[i%len(chans)]
		e, err := c.full.Seal(c.author, KindText, []byte(fmt.Sprint("message ", i)), testNow, detRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 1:
			e.Signature[i%SignatureSize] ^= 1 << (i % 8)
		case 2:
			copy(e.Signature[:], torsionSign(c.full.write, e.signingInput(), byte(i)))
			if stdVerify(e.Channel[:], e.signingInput(), e.Signature[:]) {
				t.Fatal("crypto/ed25519 accepts a signature with a small-order R")
			}
		case 3:
			e.Ciphertext = append([]byte(nil), e.Ciphertext...)
			e.Ciphertext[i%len(e.Ciphertext)] ^= 0x80
		case 4:
			if i%10 == 4 {
				e.Channel = ID{2} // y = 2: no point
			}
		}
		envs[i] = e
	}
	return envs
}

// TestBatchVerifierAgreesWithValidate: for batches of every size from 1
// to 40 cut from a shuffled mix of good and bad signatures, each envelope's
// result is Validate's, error text included.
func TestBatchVerifierAgreesWithValidate(t *testing.T) {
	envs := mixedEnvelopes(t, 40)
	bv := NewBatchVerifier(rand.Reader, 0)
	rng := mrand.New(mrand.NewPCG(3, 4))
	pol := Policy{IgnoreClock: true}
	valid, refused := 0, 0
	for size := 1; size <= len(envs); size++ {
		rng.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
		errs := make([]error, size)
		bv.VerifySignatures(envs[:size], errs)
		for i, e := range envs[:size] {
			want := Validate(e, testNow, pol)
			switch {
			case want == nil && errs[i] == nil:
				valid++
			case want != nil && errs[i] != nil && want.Error() == errs[i].Error() && errors.Is(errs[i], ErrBadSignature):
				refused++
			default:
				t.Fatalf("batch of %d, envelope %d: VerifySignatures %v, Validate %v", size, i, errs[i], want)
			}
		}
	}
	if valid == 0 || refused == 0 {
		t.Fatalf("%d valid, %d refused: the mix does not test both outcomes", valid, refused)
	}
}

// TestBatchVerifierAllValid: a batch of only good signatures, the batch
// equation's fast path, accepts them all; one bad signature added makes
// exactly that one fail.
func TestBatchVerifierAllValid(t *testing.T) {
	c := newTestChannel(t, 70)
	envs := make([]*Envelope, 64)
	for i := range envs {
		e, err := c.full.Seal(c.author, KindText, []byte{byte(i)}, testNow, detRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = e
	}
	bv := NewBatchVerifier(rand.Reader, 0)
	errs := make([]error, len(envs))
	bv.VerifySignatures(envs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
	bad := *envs[17]
	bad.Signature[40] ^= 4
	envs[17] = &bad
	bv.VerifySignatures(envs, errs)
	for i, err := range errs {
		if (i == 17) != errors.Is(err, ErrBadSignature) {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
}

// TestBatchVerifierKeyBound: the expanded keys kept never pass the bound,
// and results stay right across the table's refills.
func TestBatchVerifierKeyBound(t *testing.T) {
	bv := NewBatchVerifier(rand.Reader, 3)
	for i := range 10 {
		c := newTestChannel(t, byte(80+i))
		e, err := c.full.Seal(c.author, KindText, []byte("x"), testNow, detRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		bad := *e
		bad.Signature[0] ^= 1
		errs := make([]error, 2)
		bv.VerifySignatures([]*Envelope{e, &bad}, errs)
		if errs[0] != nil || !errors.Is(errs[1], ErrBadSignature) {
			t.Fatalf("channel %d: %v, %v", i, errs[0], errs[1])
		}
		if n := bv.Keys(); n > 3 {
			t.Fatalf("%d keys kept, bound 3", n)
		}
	}
}

// BenchmarkVerifySignatures: the CPU per signature of a batch of each
// size (8 channels), beside Validate's one at a time.
func BenchmarkVerifySignatures(b *testing.B) {
	chans := make([]testChannel, 8)
	for i := range chans {
		chans[i] = newTestChannel(b, byte(90+i))
	}
	body := make([]byte, 200)
	envs := make([]*Envelope, 128)
	for i := range envs {
		c := chans[i%len(chans)]
		e, err := c.full.Seal(c.author, KindText, body, testNow, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		envs[i] = e
	}
	b.Run("validate", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := Validate(envs[i%len(envs)], testNow, Policy{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// A batch holding one bad signature is checked again one at a time.
	b.Run("batch=32/one-bad", func(b *testing.B) {
		bv := NewBatchVerifier(rand.Reader, 0)
		batch := append([]*Envelope(nil), envs[:32]...)
		bad := *batch[5]
		bad.Signature[0] ^= 1
		batch[5] = &bad
		errs := make([]error, len(batch))
		for b.Loop() {
			bv.VerifySignatures(batch, errs)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sig")
	})
	for _, n := range []int{1, 2, 8, 32, 64, 128} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			bv := NewBatchVerifier(rand.Reader, 0)
			errs := make([]error, n)
			for b.Loop() {
				bv.VerifySignatures(envs[:n], errs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
		})
	}
}
