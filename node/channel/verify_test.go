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
)

// groupOrder is L, the order of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// stdVerify is the reference: the standard library, with its panic on a
// wrong public-key length turned into false like verifySig.
func stdVerify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// agree fails t unless verifySig and crypto/ed25519 give the same answer,
// and returns that answer.
func agree(t testing.TB, what string, pub, msg, sig []byte) bool {
	t.Helper()
	want := stdVerify(pub, msg, sig)
	if got := verifySig(pub, msg, sig); got != want {
		t.Fatalf("%s: verifySig = %v, crypto/ed25519 = %v\npub %x\nmsg %x\nsig %x", what, got, want, pub, msg, sig)
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
		{"identity A, non-canonical identity R, S = 0", identity, slices.Concat(identityPlusP, zero32), false},
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
// with S values at the edges: whatever crypto/ed25519 says, verifySig says.
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

func TestVerifySigEd25519Vectors(t *testing.T) {
	var vecs []struct{ A, R, S, M string }
	readGzipJSON(t, "ed25519vectors.json.gz", &vecs)
	if len(vecs) < 100 {
		t.Fatalf("only %d vectors", len(vecs))
	}
	accepted := 0
	for _, v := range vecs {
		if agree(t, "vector "+v.M, mustHex(t, v.A), []byte(v.M), slices.Concat(mustHex(t, v.R), mustHex(t, v.S))) {
			accepted++
		}
	}
	if accepted == 0 || accepted == len(vecs) {
		t.Fatalf("%d of %d vectors verify: the set no longer tells acceptance rules apart", accepted, len(vecs))
	}
}

// TestVerifySigRandom compares the two on random valid signatures and on
// each with one bit flipped in the key, the message or the signature.
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
		if !agree(t, "valid", pub, msg, sig) {
			t.Fatalf("case %d: valid signature rejected", i)
		}
		flip := func(b []byte) []byte {
			c := slices.Clone(b)
			bit := rng.IntN(len(c) * 8)
			c[bit/8] ^= 1 << (bit % 8)
			return c
		}
		agree(t, "flipped key bit", flip(pub), msg, sig)
		agree(t, "flipped signature bit", pub, msg, flip(sig))
		if len(msg) > 0 {
			agree(t, "flipped message bit", pub, flip(msg), sig)
		}
	}
}

// FuzzVerifySig compares verifySig with crypto/ed25519. The fuzzer picks a
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
	b.Run("curve25519-voi-stdlib", func(b *testing.B) {
		for b.Loop() {
			if !verifySig(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
}
