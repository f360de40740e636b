package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// pipeEnd is one side of an in-memory friend path.
type pipeEnd struct {
	out chan<- []byte
	in  <-chan []byte
}

func (p pipeEnd) Send(ctx context.Context, m []byte) error {
	select {
	case p.out <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p pipeEnd) Receive(ctx context.Context) ([]byte, error) {
	select {
	case m := <-p.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// honestPath forwards both ways unchanged.
func honestPath() (a, b Relay) {
	ab, ba := make(chan []byte, 1), make(chan []byte, 1)
	return pipeEnd{out: ab, in: ba}, pipeEnd{out: ba, in: ab}
}

// attacker runs a path and substitutes both keys (a man in the middle
// among the friends); afterwards it knows the shared secret it made with
// each side on its path.
type attacker struct {
	withA, withB []byte // shared secret with the initiator / responder
	pubA         []byte // the initiator's public key on this path
}

func (m *attacker) path(t *testing.T) (a, b Relay) {
	aOut, aIn := make(chan []byte, 1), make(chan []byte, 1)
	bOut, bIn := make(chan []byte, 1), make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fromA, fromB := <-aOut, <-bOut
		_, pa, _ := ParsePathMessage(fromA)
		_, pb, _ := ParsePathMessage(fromB)
		m.pubA = pa
		k1, _ := ecdh.X25519().GenerateKey(rand.Reader) // poses as the responder to A
		k2, _ := ecdh.X25519().GenerateKey(rand.Reader) // poses as the initiator to B
		pubA, _ := ecdh.X25519().NewPublicKey(pa)
		pubB, _ := ecdh.X25519().NewPublicKey(pb)
		m.withA, _ = k1.ECDH(pubA)
		m.withB, _ = k2.ECDH(pubB)
		aIn <- append([]byte{pathMsgVersion, byte(Responder)}, k1.PublicKey().Bytes()...)
		bIn <- append([]byte{pathMsgVersion, byte(Initiator)}, k2.PublicKey().Bytes()...)
		// Round two: each side's list goes back to it, re-MACed, so that
		// each sees its own view confirmed — the best a path can do.
		macA, _ := hkdf.Key(sha256.New, m.withA, nil, labelConfirm, sha256.Size)
		macB, _ := hkdf.Key(sha256.New, m.withB, nil, labelConfirm, sha256.Size)
		listA, errA := OpenConfirmMessage(macA, <-aOut)
		listB, errB := OpenConfirmMessage(macB, <-bOut)
		if errA != nil || errB != nil {
			t.Errorf("attacker could not read the lists: %v %v", errA, errB)
		}
		aIn <- sealConfirm(macA, listA)
		bIn <- sealConfirm(macB, listB)
	}()
	t.Cleanup(func() { <-done })
	return pipeEnd{out: aOut, in: aIn}, pipeEnd{out: bOut, in: bIn}
}

// agreeBoth runs both sides; the responder lists its relays in reverse
// order, which the fixed ordering must absorb.
func agreeBoth(t *testing.T, as, bs []Relay) (*MultiPath, *MultiPath) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev := make([]Relay, len(bs))
	for i, r := range bs {
		rev[len(bs)-1-i] = r
	}
	type res struct {
		mp  *MultiPath
		err error
	}
	bc := make(chan res, 1)
	go func() { mp, err := AgreeMultiPath(ctx, Responder, rev); bc <- res{mp, err} }()
	a, err := AgreeMultiPath(ctx, Initiator, as)
	if err != nil {
		t.Fatal(err)
	}
	b := <-bc
	if b.err != nil {
		t.Fatal(b.err)
	}
	return a, b.mp
}

func TestMultiPathAgreement(t *testing.T) {
	for _, tc := range []struct {
		name      string
		attacked  []bool // which of the paths the attacker runs
		wantAgree bool
	}{
		{"three honest paths", []bool{false, false, false}, true},
		{"one of three paths attacked", []bool{false, true, false}, true},
		{"two of three paths attacked", []bool{true, true, false}, true},
		{"all three paths attacked", []bool{true, true, true}, false},
		{"single attacked path", []bool{true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var as, bs []Relay
			var ms []*attacker
			for _, bad := range tc.attacked {
				var a, b Relay
				if bad {
					m := &attacker{}
					ms = append(ms, m)
					a, b = m.path(t)
				} else {
					a, b = honestPath()
				}
				as, bs = append(as, a), append(bs, b)
			}
			alice, bob := agreeBoth(t, as, bs)
			if tc.wantAgree && (alice.Paths != len(tc.attacked)-len(ms) || len(alice.Dropped) != len(ms)) {
				t.Fatalf("alice kept %d paths, dropped %v", alice.Paths, alice.Dropped)
			}
			if got := bytes.Equal(alice.Secret, bob.Secret); got != tc.wantAgree {
				t.Fatalf("secrets equal: %v, want %v", got, tc.wantAgree)
			}
			if got := alice.SafetyCode == bob.SafetyCode; got != tc.wantAgree {
				t.Fatalf("safety codes %q and %q: equal %v, want %v", alice.SafetyCode, bob.SafetyCode, got, tc.wantAgree)
			}
			// What the attackers together know of Alice's side: their shared
			// secrets, ordered as Alice orders them. It is her secret exactly
			// when they ran every path — so with one honest path left, the
			// same computation misses.
			var known []pathResult
			for _, m := range ms {
				known = append(known, pathResult{initiatorPub: m.pubA, shared: m.withA})
			}
			attackerGuess := combinePaths(known)
			if all := len(ms) == len(tc.attacked); bytes.Equal(attackerGuess, alice.Secret) != all {
				t.Fatalf("attacker guess equals Alice's secret: %v, want %v", !all, all)
			}
		})
	}
}

func TestMultiPathChannel(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	a1, b1 := honestPath()
	a2, b2 := honestPath()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	var bag *Agreement
	go func() {
		var err error
		bag, err = bob.Friends().AgreeOver(ctx, "alice", Responder, []Relay{b1, b2})
		errc <- err
	}()
	aag, err := alice.Friends().AgreeOver(ctx, "bob", Initiator, []Relay{a1, a2})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if aag.Channel.ID != bag.Channel.ID || aag.SafetyCode != bag.SafetyCode {
		t.Fatal("the two sides joined different channels")
	}
}

func TestMultiPathRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A reflected message: the path echoes Alice's own key back.
	echo := make(chan []byte, 1)
	if _, err := AgreeMultiPath(ctx, Initiator, []Relay{pipeEnd{out: echo, in: echo}}); !errors.Is(err, ErrBadPathMessage) {
		t.Fatalf("reflected key: %v", err)
	}
	// A path that never answers fails the agreement, naming the path.
	short, sc := context.WithTimeout(ctx, 50*time.Millisecond)
	defer sc()
	a, _ := honestPath()
	if _, err := AgreeMultiPath(short, Initiator, []Relay{a}); !errors.Is(err, ErrPathFailed) {
		t.Fatalf("silent path: %v", err)
	}
	if _, err := AgreeMultiPath(ctx, Initiator, nil); err == nil {
		t.Fatal("no paths accepted")
	}
}

// Path messages come from friends' relays, possibly hostile.
func FuzzParsePathMessage(f *testing.F) {
	f.Add(append([]byte{pathMsgVersion, byte(Initiator)}, make([]byte, 32)...))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		role, pub, err := ParsePathMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadPathMessage) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if (role != Initiator && role != Responder) || len(pub) != x25519Size {
			t.Fatalf("accepted role %d, key of %d bytes", role, len(pub))
		}
	})
}

func FuzzOpenConfirmMessage(f *testing.F) {
	key := make([]byte, 32)
	f.Add(sealConfirm(key, make([]byte, 64)))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := OpenConfirmMessage(key, b)
		if err != nil {
			if !errors.Is(err, ErrBadPathMessage) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if len(list) == 0 || len(list)%64 != 0 || !bytes.Equal(sealConfirm(key, list), b) {
			t.Fatalf("accepted %x", b)
		}
	})
}
