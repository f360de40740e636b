package routing

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
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
