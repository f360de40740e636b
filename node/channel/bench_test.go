package channel

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"
)

// benchSizes are the body sizes the issue asks for.
var benchSizes = []int{256, 16 * 1024}

func benchName(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func BenchmarkSeal(b *testing.B) {
	c := newTestChannel(b, 50)
	for _, n := range benchSizes {
		body := make([]byte, n)
		for _, w := range []Capability{CapabilityFull, CapabilityWrite} {
			b.Run(benchName(n)+"/"+w.String(), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := c.key(w).Seal(c.author, KindText, body, testNow, rand.Reader); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	c := newTestChannel(b, 51)
	for _, n := range benchSizes {
		for _, w := range []Capability{CapabilityFull, CapabilityWrite} {
			e, err := c.key(w).Seal(c.author, KindText, make([]byte, n), testNow, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(benchName(n)+"/"+w.String(), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := c.full.Open(e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	c := newTestChannel(b, 52)
	for _, n := range benchSizes {
		e, err := c.full.Seal(c.author, KindText, make([]byte, n), testNow, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(benchName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if err := Validate(e, testNow, Policy{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEd25519Verify is the baseline: a plain signature check over a
// message the size of the envelope a body of n bytes becomes.
func BenchmarkEd25519Verify(b *testing.B) {
	c := newTestChannel(b, 53)
	for _, n := range benchSizes {
		e, err := c.full.Seal(c.author, KindText, make([]byte, n), testNow, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := e.MarshalBinary()
		sig := ed25519.Sign(c.full.write, msg)
		pub := c.full.write.Public().(ed25519.PublicKey)
		b.Run(benchName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if !ed25519.Verify(pub, msg, sig) {
					b.Fatal("verify")
				}
			}
		})
	}
}
