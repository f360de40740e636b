package client

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// FuzzDecodeLookupQuery: any control body either decodes to a query that
// encodes back to the same bytes, or is refused with ErrBadLookup.
func FuzzDecodeLookupQuery(f *testing.F) {
	q := lookupQuery{}
	for i := range q.Hash {
		q.Hash[i] = byte(i)
	}
	f.Add(q.Encode())
	f.Add([]byte{control.LookupQuery, lookupVersion})
	f.Add(append(q.Encode(), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeLookupQuery(b)
		if err != nil {
			if !errors.Is(err, ErrBadLookup) {
				t.Fatalf("error %v is not ErrBadLookup", err)
			}
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("round trip: %x -> %x", b, got.Encode())
		}
	})
}

// FuzzDecodeLookupAnswer: any control body either decodes to an answer
// that encodes back to the same bytes, or is refused with ErrBadLookup;
// a decoded answer that opens under the query's key names the identity
// sealed for it, and no changed byte lets it open.
func FuzzDecodeLookupAnswer(f *testing.F) {
	seed := [32]byte{1, 2, 3}
	priv, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		f.Fatal(err)
	}
	q := lookupQuery{ID: [lookupIDSize]byte{9}, Hash: [contactHashSize]byte{7}}
	copy(q.Pub[:], priv.PublicKey().Bytes())
	contact := channel.IdentityKey{5}
	a, err := sealLookupAnswer(q, contact)
	if err != nil {
		f.Fatal(err)
	}
	valid := a.Encode()
	f.Add(bytes.Clone(valid))
	f.Add(bytes.Clone(valid[:lookupAnswerHeader]))
	f.Add(append(bytes.Clone(valid), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeLookupAnswer(b)
		if err != nil {
			if !errors.Is(err, ErrBadLookup) {
				t.Fatalf("error %v is not ErrBadLookup", err)
			}
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("round trip: %x -> %x", b, got.Encode())
		}
		// Every process seals its own seed (a fresh one-time key), so the
		// check is: what opens names the sealed identity, and any change
		// to it stops it opening.
		id, err := openLookupAnswer(got, priv, q.Hash)
		if err != nil {
			if !errors.Is(err, ErrBadLookup) {
				t.Fatalf("open: %v is not ErrBadLookup", err)
			}
			return
		}
		if id != contact {
			t.Fatalf("answer %x opened to %s, not the sealed identity", b, id)
		}
		for i := range b[2:] {
			changed := bytes.Clone(b)
			changed[2+i] ^= 0x80
			if a, err := decodeLookupAnswer(changed); err == nil {
				if _, err := openLookupAnswer(a, priv, q.Hash); err == nil {
					t.Fatalf("answer changed at byte %d still opens", 2+i)
				}
			}
		}
	})
}
