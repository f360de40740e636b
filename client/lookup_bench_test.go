package client

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkLookupAnswer is a friend's cost of a hit (seal) plus the
// asker's cost of reading it (open); compare it with
// BenchmarkContactHash, the asker's cost of a query, in the same run.
func BenchmarkLookupAnswer(b *testing.B) {
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	q := lookupQuery{ID: [lookupIDSize]byte{1}, Hash: [contactHashSize]byte{2}}
	copy(q.Pub[:], priv.PublicKey().Bytes())
	for b.Loop() {
		a, err := sealLookupAnswer(q, channel.IdentityKey{3})
		if err != nil {
			b.Fatal(err)
		}
		a, err = decodeLookupAnswer(a.Encode())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := openLookupAnswer(a, priv, q.Hash); err != nil {
			b.Fatal(err)
		}
	}
}
