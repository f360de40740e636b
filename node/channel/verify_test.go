package channel

import (
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// groupOrder is L, the order of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// stdVerify is crypto/ed25519, with its panic on a wrong public-key length
// turned into false like verifySig.
func stdVerify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// zip215Verify is the reference for verifySig: ZIP 215 written out on
// filippo.io/edwards25519, a different curve implementation from the
// node's. A and R decode from any encoding of a point (edwards25519's
// SetBytes takes non-canonical ones, as ZIP 215 asks), S must be below L,
// k = SHA-512(R || A || M) mod L, and [8]([S]B - R - [k]A) must be the
// identity.
func zip215Verify(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	r, err := new(edwards25519.Point).SetBytes(sig[:32])
	if err != nil {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic(err)
	}
	minusA := new(edwards25519.Point).Negate(a)
	p := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, minusA, s) // [S]B - [k]A
	p.Subtract(p, r)
	p.MultByCofactor(p)
	return p.Equal(edwards25519.NewIdentityPoint()) == 1
}

// agree fails t unless verifySig and the ZIP 215 reference give the same
// answer, and returns that answer.
func agree(t testing.TB, what string, pub, msg, sig []byte) bool {
	t.Helper()
	want := zip215Verify(pub, msg, sig)
	if got := verifySig(pub, msg, sig); got != want {
		t.Fatalf("%s: verifySig = %v, ZIP 215 reference = %v\npub %x\nmsg %x\nsig %x", what, got, want, pub, msg, sig)
	}
	return want
}

func le32(n *big.Int) []byte {
	b := make([]byte, 32)
	n.FillBytes(b)
	slices.Reverse(b)
	return b
}

func fromLE(b []byte) *big.Int {
	be := slices.Clone(b)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}

// basePointMultiple returns [r]B's canonical encoding and r mod L, for a
// signature with a known discrete log of R: crypto/ed25519 derives the
// public key of a seed as [clamp(SHA-512(seed)[:32])]B.
func basePointMultiple(seed byte) (point []byte, r []byte) {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	h := sha512.Sum512(s)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	a := fromLE(h[:32])
	return ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey), le32(a.Mod(a, groupOrder))
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodings are the points (and non-points) where Ed25519 implementations
// disagree: the eight small-order points, their non-canonical encodings
// (y >= p, and x = 0 with the sign bit set), y values with no point, and
// one ordinary point.
func encodings(t testing.TB) map[string][]byte {
	t.Helper()
	named := map[string]string{
		"identity":            "0100000000000000000000000000000000000000000000000000000000000000",
		"order 2":             "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 4":             "0000000000000000000000000000000000000000000000000000000000000000",
		"order 4 neg":         "0000000000000000000000000000000000000000000000000000000000000080",
		"order 8 a":           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"order 8 b":           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"order 8 c":           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"order 8 d":           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"identity x=-0":       "0100000000000000000000000000000000000000000000000000000000000080",
		"order 2 x=-0":        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"not a point (y=2)":   "0200000000000000000000000000000000000000000000000000000000000000",
		"all ones":            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"base point":          "5866666666666666666666666666666666666666666666666666666666666666",
		"base point neg":      "58666666666666666666666666666666666666666666666666666666666666e6",
		"identity y=p+1":      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"identity y=p+1 x=-0": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"order 4 y=p":         "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 4 y=p neg":     "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	}
	out := make(map[string][]byte, len(named)+19)
	for name, h := range named {
		out[name] = mustHex(t, h)
	}
	// Every other y in [p, 2^255): the only non-canonical y encodings.
	for k := 2; k < 19; k++ {
		b := mustHex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
		b[0] += byte(k)
		out[fmt.Sprintf("y=p+%d", k)] = b
		b = slices.Clone(b)
		b[31] |= 0x80
		out[fmt.Sprintf("y=p+%d x<0", k)] = b
	}
	return out
}

func TestVerifySigEdgeCases(t *testing.T) {
	msg := []byte("redpanda edge case")
	rPoint, rScalar := basePointMultiple(7)
	pub, priv, _ := ed25519.GenerateKey(nil)
	good := ed25519.Sign(priv, msg)
	sPlusL := le32(new(big.Int).Add(fromLE(good[32:]), groupOrder))
	identity := mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")
	identityPlusP := mustHex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	zero32 := make([]byte, 32)

	tests := []struct {
		name     string
		pub, sig []byte
		want     bool
	}{
		{"valid", pub, good, true},
		{"S + L (non-canonical S)", pub, slices.Concat(good[:32], sPlusL), false},
		{"S = L", pub, slices.Concat(good[:32], le32(groupOrder)), false},
		{"flipped R bit", pub, slices.Concat([]byte{good[0] ^ 1}, good[1:]), false},
		{"identity A, R = [r]B, S = r", identity, slices.Concat(rPoint, rScalar), true},
		{"identity A non-canonical (y = p+1)", identityPlusP, slices.Concat(rPoint, rScalar), true},
		{"identity A, identity R, S = 0", identity, slices.Concat(identity, zero32), true},
		// crypto/ed25519 refuses a non-canonical R; ZIP 215 takes it.
		{"identity A, non-canonical identity R, S = 0", identity, slices.Concat(identityPlusP, zero32), true},
		{"short signature", pub, good[:63], false},
		{"long signature", pub, append(slices.Clone(good), 0), false},
		{"short public key", pub[:31], good, false},
		{"long public key", append(slices.Clone(pub), 0), good, false},
		{"empty", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := agree(t, tc.name, tc.pub, msg, tc.sig); got != tc.want {
				t.Fatalf("both say %v, want %v", got, tc.want)
			}
		})
	}
}

// TestVerifySigEncodingGrid tries every awkward encoding as A and as R
// with S values at the edges: whatever the ZIP 215 reference says,
// verifySig says.
func TestVerifySigEncodingGrid(t *testing.T) {
	enc := encodings(t)
	_, r := basePointMultiple(9)
	scalars := [][]byte{make([]byte, 32), le32(big.NewInt(1)), r, le32(new(big.Int).Sub(groupOrder, big.NewInt(1)))}
	msgs := [][]byte{nil, []byte("m")}
	accepted := 0
	for an, a := range enc {
		for rn, rr := range enc {
			for _, s := range scalars {
				for _, m := range msgs {
					if agree(t, "A "+an+", R "+rn, a, m, slices.Concat(rr, s)) {
						accepted++
					}
				}
			}
		}
	}
	// Small-order A and R with S = 0 verify for some messages; a grid
	// where nothing verifies would test only the rejection path.
	if accepted == 0 {
		t.Fatal("no case in the grid verified")
	}
	t.Logf("%d of %d grid cases verify under both", accepted, len(enc)*len(enc)*len(scalars)*len(msgs))
}

func readGzipJSON(t *testing.T, name string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestVerifySigSpeccheck(t *testing.T) {
	var cases []struct {
		Message   string `json:"message"`
		PubKey    string `json:"pub_key"`
		Signature string `json:"signature"`
	}
	readGzipJSON(t, "speccheck_cases.json.gz", &cases)
	if len(cases) != 12 {
		t.Fatalf("%d speccheck cases, want 12", len(cases))
	}
	for i, c := range cases {
		agree(t, fmt.Sprintf("speccheck case %d", i), mustHex(t, c.PubKey), mustHex(t, c.Message), mustHex(t, c.Signature))
	}
}

// TestVerifySigEd25519Vectors: the set was made of signatures that the
// most permissive rule accepts (small-order and non-canonical A and R, S
// below L), which is ZIP 215: every vector verifies, while crypto/ed25519
// refuses some, so the set still tells the two rules apart.
func TestVerifySigEd25519Vectors(t *testing.T) {
	var vecs []struct{ A, R, S, M string }
	readGzipJSON(t, "ed25519vectors.json.gz", &vecs)
	if len(vecs) < 100 {
		t.Fatalf("only %d vectors", len(vecs))
	}
	std := 0
	for _, v := range vecs {
		pub, sig := mustHex(t, v.A), slices.Concat(mustHex(t, v.R), mustHex(t, v.S))
		if !agree(t, "vector "+v.M, pub, []byte(v.M), sig) {
			t.Fatalf("vector %s refused", v.M)
		}
		if stdVerify(pub, []byte(v.M), sig) {
			std++
		}
	}
	if std == len(vecs) {
		t.Fatalf("crypto/ed25519 accepts all %d vectors: the set no longer tells the rules apart", len(vecs))
	}
	t.Logf("ZIP 215 accepts %d of %d vectors, crypto/ed25519 %d", len(vecs), len(vecs), std)
}

// TestVerifySigZIP215SmallOrder is ZIP 215's own test set, made here: every
// encoding of a small-order point (canonical or not) as A and as R, S = 0,
// message "Zcash", must verify; there are 14 such encodings, so 196 cases.
func TestVerifySigZIP215SmallOrder(t *testing.T) {
	var small [][]byte
	for _, b := range encodings(t) {
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
			small = append(small, b)
		}
	}
	if len(small) != 14 {
		t.Fatalf("%d small-order encodings, want 14", len(small))
	}
	zero := make([]byte, 32)
	for _, a := range small {
		for _, r := range small {
			if !agree(t, "small order", a, []byte("Zcash"), slices.Concat(r, zero)) {
				t.Fatalf("A %x, R %x, S 0 refused", a, r)
			}
		}
	}
}

// TestVerifySigRandom compares verifySig with the reference on random
// valid signatures and on each with one bit flipped in the key, the
// message or the signature; crypto/ed25519 must say the same on all of
// these, since none has a small-order component made on purpose.
func TestVerifySigRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range 200 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := []byte(priv.Public().(ed25519.PublicKey))
		msg := make([]byte, rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		both := func(what string, pub, msg, sig []byte) {
			t.Helper()
			if got, std := agree(t, what, pub, msg, sig), stdVerify(pub, msg, sig); got != std {
				t.Fatalf("case %d, %s: verifySig = %v, crypto/ed25519 = %v", i, what, got, std)
			}
		}
		if !agree(t, "valid", pub, msg, sig) {
			t.Fatalf("case %d: valid signature rejected", i)
		}
		both("valid", pub, msg, sig)
		flip := func(b []byte) []byte {
			c := slices.Clone(b)
			bit := rng.IntN(len(c) * 8)
			c[bit/8] ^= 1 << (bit % 8)
			return c
		}
		both("flipped key bit", flip(pub), msg, sig)
		both("flipped signature bit", pub, msg, flip(sig))
		if len(msg) > 0 {
			both("flipped message bit", pub, flip(msg), sig)
		}
	}
}

// FuzzVerifySig compares verifySig with the ZIP 215 reference. The fuzzer picks a
// key seed and a message, the test signs, and the fuzzer's masks then
// damage the key and signature, so inputs stay near valid signatures
// (random bytes alone almost never are).
func FuzzVerifySig(f *testing.F) {
	f.Add([]byte{1}, []byte("hello"), []byte{}, []byte{})
	f.Add([]byte{2}, []byte(""), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, []byte{})
	f.Add([]byte{3}, []byte("x"), []byte{}, slices.Concat(make([]byte, 32), le32(groupOrder)))
	f.Add([]byte{4}, []byte("raw"), []byte{0xff}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, seed, msg, pubMask, sigMask []byte) {
		s := sha256.Sum256(seed)
		priv := ed25519.NewKeyFromSeed(s[:])
		pub := []byte(priv.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(priv, msg)
		for i := range min(len(pub), len(pubMask)) {
			pub[i] ^= pubMask[i]
		}
		for i := range min(len(sig), len(sigMask)) {
			sig[i] ^= sigMask[i]
		}
		// A mask longer than the field also changes its length.
		if len(sigMask) > len(sig)+8 {
			sig = sig[:len(sig)-1]
		}
		agree(t, "fuzz", pub, msg, sig)
	})
}

func BenchmarkVerifySig(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 1205)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
	b.Run("curve25519-voi-zip215", func(b *testing.B) {
		for b.Loop() {
			if !verifySig(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
}
