package routing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

func TestChainStringRoundTrip(t *testing.T) {
	f := newFriends(t)
	tests := []struct {
		c       Chain
		subject channel.IdentityKey
		hop     int
	}{{nil, f.owner.Public(), 0}, {f.c1, f.f1.Public(), 1}, {f.c3, f.f3.Public(), 3}}
	for _, tt := range tests {
		s := tt.c.String()
		if !strings.HasPrefix(s, ChainPrefix) || len(s) > MaxChainString {
			t.Fatalf("chain string %q", s)
		}
		got, err := ParseChain("  " + s + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != s {
			t.Fatalf("round trip changed the chain")
		}
		if hop, err := got.Verify(f.owner.Public(), tt.subject, time.Now()); err != nil || hop != tt.hop {
			t.Fatalf("parsed chain: hop %d, %v; want %d", hop, err, tt.hop)
		}
	}
}

// TestChainHint: a chain string carries a node hint that ParseChainHint
// returns as it was and ParseChain ignores; a hint over the bound is not
// written, and one over the bound in a string is refused.
func TestChainHint(t *testing.T) {
	f := newFriends(t)
	h := bytes.Repeat([]byte{0x42}, 39)
	s := f.c1.StringWithHint(h)
	c, got, err := ParseChainHint(s)
	if err != nil || !bytes.Equal(got, h) || c.String() != f.c1.String() {
		t.Fatalf("ParseChainHint: %v %x %v", c, got, err)
	}
	if c, err := ParseChain(s); err != nil || c.String() != f.c1.String() {
		t.Fatalf("ParseChain of a hinted chain: %v", err)
	}
	if _, got, _ := ParseChainHint(f.c1.String()); got != nil {
		t.Fatalf("a chain without a hint has hint %x", got)
	}
	if f.c1.StringWithHint(make([]byte, channel.MaxHintBytes+1)) != f.c1.String() {
		t.Fatal("a hint over the bound was written")
	}
	b, _ := proto.Marshal(&wirepb.HopChain{Tickets: f.c1.toPB(), Hint: make([]byte, channel.MaxHintBytes+1)})
	sum := sha256.Sum256(b)
	big := ChainPrefix + base64.RawURLEncoding.EncodeToString(append(b, sum[:chainChecksum]...))
	if _, _, err := ParseChainHint(big); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a hint over the bound: %v", err)
	}
}

func TestParseChainRefuses(t *testing.T) {
	f := newFriends(t)
	good := f.c2.String()
	flip := []byte(good)
	flip[len(flip)/2] ^= 1
	if flip[len(flip)/2] == '_' || flip[len(flip)/2] == '-' {
		flip[len(flip)/2] = 'A'
	}
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"wrong prefix", "rpi" + good[3:]},
		{"not base64", ChainPrefix + "!!!"},
		{"cut short", good[:len(good)-5]},
		{"one character changed", string(flip)},
		{"too long", ChainPrefix + strings.Repeat("A", MaxChainString)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseChain(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseChain: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestIssueTicketRefuses(t *testing.T) {
	id := newIdentity(t)
	for _, hop := range []int{0, MaxHop + 1} {
		if _, err := IssueTicket(id, newIdentity(t).Public(), hop, time.Now()); !errors.Is(err, ErrHopTooFar) {
			t.Fatalf("hop %d: %v", hop, err)
		}
	}
	if _, err := IssueTicket(id, id.Public(), 1, time.Now()); err == nil {
		t.Fatal("ticket for oneself issued")
	}
}
