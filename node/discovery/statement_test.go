package discovery

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

func newKey(t testing.TB) *channel.Key {
	t.Helper()
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPeerID(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStatementVerify(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	key, other := newKey(t), newKey(t)
	node, stranger := newPeerID(t), newPeerID(t)
	writeOnly, err := key.WriteOnly()
	if err != nil {
		t.Fatal(err)
	}
	issue := func(k *channel.Key, p peer.ID, until time.Time) *Statement {
		st, err := IssueStatement(k, p, until)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	forged := issue(key, node, now.Add(time.Hour))
	forged.Until = now.Add(1000 * time.Hour) // extended without the key
	// A statement signed by another channel's key, relabelled as ours.
	relabelled := issue(other, node, now.Add(time.Hour))
	relabelled.Channel = key.ID()

	cases := []struct {
		name string
		st   *Statement
		ch   channel.ID
		node peer.ID
		want error
	}{
		{"valid full key", issue(key, node, now.Add(time.Hour)), key.ID(), node, nil},
		{"valid write-only key", issue(writeOnly, node, now.Add(time.Hour)), key.ID(), node, nil},
		{"forged: changed after signing", forged, key.ID(), node, ErrBadSignature},
		{"forged: other key's signature", relabelled, key.ID(), node, ErrBadSignature},
		{"expired", issue(key, node, now.Add(-time.Second)), key.ID(), node, ErrExpired},
		{"expires now", issue(key, node, now), key.ID(), node, ErrExpired},
		{"other channel", issue(other, node, now.Add(time.Hour)), key.ID(), node, ErrWrongChannel},
		{"shown by another node", issue(key, node, now.Add(time.Hour)), key.ID(), stranger, ErrWrongPeer},
		{"none", nil, key.ID(), node, ErrNotAuthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyStatement(tc.st, tc.ch, tc.node, now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyStatement: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyStatement = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIssueNeedsWriteKey(t *testing.T) {
	ro, err := newKey(t).ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IssueStatement(ro, newPeerID(t), time.Now().Add(time.Hour)); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("IssueStatement with a read-only key = %v, want ErrCannotSign", err)
	}
}

func TestStatementRoundTrip(t *testing.T) {
	key := newKey(t)
	st, err := IssueStatement(key, newPeerID(t), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyStatement(got, key.ID(), st.Node, time.Now()); err != nil {
		t.Fatalf("decoded statement: %v", err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}
	frame, err := encodeFrame([]*Statement{st, st})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := readFrame(bytes.NewReader(frame))
	if err != nil || len(sts) != 2 {
		t.Fatalf("readFrame = %d statements, %v", len(sts), err)
	}
}

func TestStatementDecodeErrors(t *testing.T) {
	st, err := IssueStatement(newKey(t), newPeerID(t), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := st.MarshalBinary()
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:40]},
		{"truncated signature", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"version", append([]byte{9}, good[1:]...)},
		{"zero peer length", func() []byte { b := append([]byte{}, good...); b[1+32+8] = 0; return b }()},
		{"huge peer length", func() []byte { b := append([]byte{}, good...); b[1+32+8] = 200; return b }()},
		{"garbage peer ID", func() []byte {
			b := append([]byte{}, good...)
			for i := 1 + 32 + 8 + 1; i < len(b)-64; i++ {
				b[i] = 0xff
			}
			return b
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := UnmarshalStatement(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("UnmarshalStatement = %v, want ErrMalformed", err)
			}
		})
	}
	frames := []struct {
		name string
		b    []byte
	}{
		{"length past end", []byte{0, 5, 3, 1}},
		{"statement past end", []byte{0, 2, 90, 1}},
		{"too long", []byte{0xff, 0xff}},
	}
	for _, tc := range frames {
		t.Run("frame "+tc.name, func(t *testing.T) {
			if _, err := readFrame(bytes.NewReader(tc.b)); err == nil {
				t.Fatal("readFrame accepted a bad frame")
			}
		})
	}
}

func FuzzUnmarshalStatement(f *testing.F) {
	st, err := IssueStatement(newKey(f), newPeerID(f), time.Unix(1_900_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := st.MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:50])
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := UnmarshalStatement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		again, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded statement does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	st, err := IssueStatement(newKey(f), newPeerID(f), time.Unix(1_900_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	frame, _ := encodeFrame([]*Statement{st})
	f.Add(frame)
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		sts, err := readFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(sts) > MaxStatementsPerFrame {
			t.Fatalf("%d statements accepted", len(sts))
		}
		again, err := encodeFrame(sts)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, b[:len(again)]) {
			t.Fatal("round trip changed the frame")
		}
	})
}

func TestProvideKeyRotates(t *testing.T) {
	ch, other := newKey(t).ID(), newKey(t).ID()
	d := DayOf(time.Date(2026, 11, 24, 23, 59, 59, 0, time.UTC))
	if d.String() != "2026-11-24" {
		t.Fatalf("DayOf = %s", d)
	}
	if !ProvideKey(ch, d).Equals(ProvideKey(ch, d)) {
		t.Fatal("ProvideKey not deterministic")
	}
	if ProvideKey(ch, d).Equals(ProvideKey(ch, d+1)) || ProvideKey(ch, d).Equals(ProvideKey(other, d)) {
		t.Fatal("ProvideKey does not depend on the day and the channel")
	}
	cases := []struct {
		name string
		now  time.Time
		want []Day
	}{
		{"midday", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), []Day{d}},
		{"before window", time.Date(2026, 11, 24, 22, 59, 0, 0, time.UTC), []Day{d}},
		{"in window", time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC), []Day{d, d + 1}},
		{"after midnight", time.Date(2026, 11, 25, 0, 1, 0, 0, time.UTC), []Day{d + 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := provideDays(tc.now, time.Hour)
			if len(got) != len(tc.want) || got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1] {
				t.Fatalf("provideDays = %v, want %v", got, tc.want)
			}
		})
	}
	// A looker just after midnight still finds a provider that announced
	// only yesterday's key, and one just before midnight finds one that
	// already moved on.
	if l := lookupDays(time.Date(2026, 11, 25, 0, 1, 0, 0, time.UTC)); l[1] != d {
		t.Fatalf("lookupDays after midnight = %v, want yesterday %v included", l, d)
	}
}
