package channel

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// paperKey is the example key string of the paper, §4.3.
const paperKey = "pr7768EZp1Y8PwQhozCfacTNjL4iRxgJqcm8NDVuyvhfYJDwkzJFTtCZ6"

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// detRand is a deterministic randomness source for reproducible tests.
func detRand(seed byte) io.Reader {
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	return rand.NewChaCha8(s)
}

type testChannel struct {
	full, read, write *Key
	author            *Identity
}

func newTestChannel(t testing.TB, seed byte) testChannel {
	t.Helper()
	r := detRand(seed)
	full, err := NewKey(r)
	if err != nil {
		t.Fatal(err)
	}
	read, err := full.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	write, err := full.WriteOnly()
	if err != nil {
		t.Fatal(err)
	}
	author, err := NewIdentity(r)
	if err != nil {
		t.Fatal(err)
	}
	return testChannel{full, read, write, author}
}

func (c testChannel) key(cp Capability) *Key {
	switch cp {
	case CapabilityFull:
		return c.full
	case CapabilityRead:
		return c.read
	}
	return c.write
}
