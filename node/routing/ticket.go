package routing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// MaxHop is the farthest hop a ticket may give: the owner is hop 0, the
// owner's friends hop 1, and so on.
const MaxHop = 6

// HopInfinity is the hop of a client registered without a chain.
const HopInfinity = -1

// ticketDomain separates ticket signatures from every other use of an
// identity key.
const ticketDomain = "redpanda/hop-ticket/v1\x00"

// Ticket is signed by a holder at hop Hop-1 (the issuer) for a contact (the
// subject), who may then register at hop Hop.
type Ticket struct {
	Issuer, Subject channel.IdentityKey
	Hop             int
	NotAfter        time.Time
	Signature       []byte
}

// IssueTicket signs a ticket giving subject hop hop (the issuer's own hop
// plus one) until notAfter, at millisecond precision.
func IssueTicket(issuer *channel.Identity, subject channel.IdentityKey, hop int, notAfter time.Time) (*Ticket, error) {
	if hop < 1 || hop > MaxHop {
		return nil, fmt.Errorf("routing.IssueTicket: hop %d outside 1..%d: %w", hop, MaxHop, ErrHopTooFar)
	}
	if subject == issuer.Public() {
		return nil, fmt.Errorf("routing.IssueTicket: a ticket for oneself proves nothing")
	}
	t := &Ticket{Issuer: issuer.Public(), Subject: subject, Hop: hop, NotAfter: time.UnixMilli(notAfter.UnixMilli())}
	t.Signature = issuer.Sign(ticketDomain, t.signedBytes())
	return t, nil
}

// signedBytes is what the issuer signs: issuer, subject, hop, not-after.
func (t *Ticket) signedBytes() []byte {
	b := make([]byte, 0, 2*len(t.Issuer)+4+8)
	b = append(b, t.Issuer[:]...)
	b = append(b, t.Subject[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Hop))
	return binary.BigEndian.AppendUint64(b, uint64(t.NotAfter.UnixMilli()))
}

func (t *Ticket) toPB() *wirepb.HopTicket {
	return &wirepb.HopTicket{Issuer: t.Issuer[:], Subject: t.Subject[:], Hop: uint32(t.Hop),
		NotAfter: t.NotAfter.UnixMilli(), Signature: t.Signature}
}

func ticketFromPB(p *wirepb.HopTicket) (*Ticket, error) {
	var t Ticket
	if len(p.GetIssuer()) != len(t.Issuer) || len(p.GetSubject()) != len(t.Subject) {
		return nil, fmt.Errorf("%w: ticket keys are %d and %d bytes, want %d", ErrMalformed,
			len(p.GetIssuer()), len(p.GetSubject()), len(t.Issuer))
	}
	if p.GetHop() < 1 || p.GetHop() > MaxHop {
		return nil, fmt.Errorf("%w: ticket hop %d outside 1..%d", ErrMalformed, p.GetHop(), MaxHop)
	}
	if len(p.GetSignature()) != 64 {
		return nil, fmt.Errorf("%w: ticket signature is %d bytes, want 64", ErrMalformed, len(p.GetSignature()))
	}
	copy(t.Issuer[:], p.GetIssuer())
	copy(t.Subject[:], p.GetSubject())
	t.Hop = int(p.GetHop())
	t.NotAfter = time.UnixMilli(p.GetNotAfter())
	t.Signature = bytes.Clone(p.GetSignature())
	return &t, nil
}

// Chain is a list of tickets from the one the owner signed down to the one
// naming the client. An empty chain is a stranger's: hop infinity.
type Chain []*Ticket

// Verify checks the chain for subject against a node whose owner is owner
// and returns subject's hop. The owner itself is hop 0 whatever it
// presents; anyone else with an empty chain is HopInfinity. Errors wrap
// ErrForgedTicket, ErrExpiredTicket, ErrChainNotToOwner, ErrWrongSubject
// or ErrHopTooFar, naming the ticket at fault.
func (c Chain) Verify(owner, subject channel.IdentityKey, now time.Time) (int, error) {
	return c.verify(owner, subject, now, nil)
}

// verify is Verify that also refuses chains through an identity revoked
// says is revoked (ErrRevoked).
func (c Chain) verify(owner, subject channel.IdentityKey, now time.Time, revoked func(channel.IdentityKey) bool) (int, error) {
	if revoked != nil && revoked(subject) {
		return 0, fmt.Errorf("%w: %s", ErrRevoked, subject)
	}
	if owner != (channel.IdentityKey{}) && subject == owner {
		return 0, nil
	}
	if len(c) == 0 {
		return HopInfinity, nil
	}
	if owner == (channel.IdentityKey{}) {
		return 0, fmt.Errorf("%w: this node has no owner yet", ErrChainNotToOwner)
	}
	if len(c) > MaxHop {
		return 0, fmt.Errorf("%w: %d tickets, at most %d", ErrHopTooFar, len(c), MaxHop)
	}
	seen := map[channel.IdentityKey]bool{owner: true}
	want := owner
	for i, t := range c {
		if t == nil {
			return 0, fmt.Errorf("%w: ticket %d is missing", ErrChainNotToOwner, i+1)
		}
		if t.Issuer != want {
			if i == 0 {
				return 0, fmt.Errorf("%w: first ticket issued by %s, owner is %s", ErrChainNotToOwner, t.Issuer, owner)
			}
			return 0, fmt.Errorf("%w: ticket %d issued by %s, not by the previous ticket's subject %s", ErrChainNotToOwner, i+1, t.Issuer, want)
		}
		if !t.Issuer.Verify(ticketDomain, t.signedBytes(), t.Signature) {
			return 0, fmt.Errorf("%w: ticket %d (issuer %s)", ErrForgedTicket, i+1, t.Issuer)
		}
		if !now.Before(t.NotAfter) {
			return 0, fmt.Errorf("%w: ticket %d for %s ended %s", ErrExpiredTicket, i+1, t.Subject, t.NotAfter.UTC().Format(time.RFC3339))
		}
		if t.Hop != i+1 {
			return 0, fmt.Errorf("%w: ticket %d claims hop %d", ErrChainNotToOwner, i+1, t.Hop)
		}
		if seen[t.Subject] {
			return 0, fmt.Errorf("%w: ticket %d loops back to %s", ErrChainNotToOwner, i+1, t.Subject)
		}
		seen[t.Subject] = true
		if revoked != nil && revoked(t.Issuer) {
			return 0, fmt.Errorf("%w: sponsor %s at hop %d", ErrRevoked, t.Issuer, i)
		}
		want = t.Subject
	}
	if want != subject {
		return 0, fmt.Errorf("%w: chain ends at %s, not %s", ErrWrongSubject, want, subject)
	}
	return len(c), nil
}

// Sponsors returns the issuers along the chain, owner first.
func (c Chain) sponsors() []channel.IdentityKey {
	out := make([]channel.IdentityKey, 0, len(c))
	for _, t := range c {
		out = append(out, t.Issuer)
	}
	return out
}

// notAfter is the earliest ticket end: the chain is no good after it.
func (c Chain) notAfter() time.Time {
	var end time.Time
	for _, t := range c {
		if end.IsZero() || t.NotAfter.Before(end) {
			end = t.NotAfter
		}
	}
	return end
}

func (c Chain) toPB() []*wirepb.HopTicket {
	out := make([]*wirepb.HopTicket, len(c))
	for i, t := range c {
		out[i] = t.toPB()
	}
	return out
}

func chainFromPB(ts []*wirepb.HopTicket) (Chain, error) {
	if len(ts) > MaxHop {
		return nil, fmt.Errorf("%w: chain of %d tickets, at most %d", ErrMalformed, len(ts), MaxHop)
	}
	c := make(Chain, 0, len(ts))
	for i, p := range ts {
		t, err := ticketFromPB(p)
		if err != nil {
			return nil, fmt.Errorf("ticket %d: %w", i+1, err)
		}
		c = append(c, t)
	}
	return c, nil
}

// ChainPrefix starts every chain string.
const ChainPrefix = "rpt"

// MaxChainString caps the length of a chain string ParseChain accepts: six
// tickets fit with room to spare.
const MaxChainString = 2048

const chainChecksum = 4

// String is a pasteable form: ChainPrefix + base64url(protobuf HopChain ||
// first 4 bytes of its SHA-256), so a mangled paste is told apart from a
// forged ticket.
func (c Chain) String() string { return c.StringWithHint(nil) }

// StringWithHint is String carrying a node hint (node/hint: where the
// chain's nodes are) of at most channel.MaxHintBytes; a longer one is
// left out. Parsers that predate hints ignore it.
func (c Chain) StringWithHint(hint []byte) string {
	if len(hint) > channel.MaxHintBytes {
		hint = nil
	}
	b, err := proto.Marshal(&wirepb.HopChain{Tickets: c.toPB(), Hint: hint})
	if err != nil {
		return ChainPrefix + "!" + err.Error() // unreachable: the message has only bytes and ints
	}
	sum := sha256.Sum256(b)
	return ChainPrefix + base64.RawURLEncoding.EncodeToString(append(b, sum[:chainChecksum]...))
}

// ParseChain parses what Chain.String prints, with surrounding white space
// allowed. It checks the form only; Verify checks the signatures. A hint
// the string carries is ignored (ParseChainHint returns it).
func ParseChain(s string) (Chain, error) {
	c, _, err := ParseChainHint(s)
	return c, err
}

// ParseChainHint is ParseChain that also returns the node hint the string
// carries (nil when none), unread: package node/hint decodes it.
func ParseChainHint(s string) (Chain, []byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxChainString {
		return nil, nil, fmt.Errorf("%w: chain string of %d characters, at most %d", ErrMalformed, len(s), MaxChainString)
	}
	rest, ok := strings.CutPrefix(s, ChainPrefix)
	if !ok {
		return nil, nil, fmt.Errorf("%w: a chain string starts with %q", ErrMalformed, ChainPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: chain string: %v", ErrMalformed, err)
	}
	if len(raw) < chainChecksum {
		return nil, nil, fmt.Errorf("%w: chain string too short", ErrMalformed)
	}
	body, sum := raw[:len(raw)-chainChecksum], raw[len(raw)-chainChecksum:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:chainChecksum]) {
		return nil, nil, fmt.Errorf("%w: chain string checksum mismatch (mistyped or cut short?)", ErrMalformed)
	}
	var pb wirepb.HopChain
	if err := proto.Unmarshal(body, &pb); err != nil {
		return nil, nil, fmt.Errorf("%w: chain: %v", ErrMalformed, err)
	}
	if len(pb.GetHint()) > channel.MaxHintBytes {
		return nil, nil, fmt.Errorf("%w: chain hint of %d bytes, at most %d", ErrMalformed, len(pb.GetHint()), channel.MaxHintBytes)
	}
	c, err := chainFromPB(pb.GetTickets())
	if err != nil {
		return nil, nil, err
	}
	return c, pb.GetHint(), nil
}
