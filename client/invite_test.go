package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

func TestInviteRoundTrip(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	inv, err := alice.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inv, PrefixInvitation) || len(inv) > 60 {
		t.Fatalf("invitation %q: want a short %s… string", inv, PrefixInvitation)
	}
	ab, err := bob.Invites().Accept("alice", inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(ab.Answer) > 80 {
		t.Fatalf("answer %q is longer than an SMS should carry", ab.Answer)
	}
	aa, err := alice.Invites().Complete("bob", ab.Answer)
	if err != nil {
		t.Fatal(err)
	}
	if aa.Channel.ID != ab.Channel.ID || aa.Channel.Capability != "full" {
		t.Fatalf("channels differ: %+v vs %+v", aa.Channel, ab.Channel)
	}
	if aa.SafetyCode != ab.SafetyCode || len(aa.SafetyCode) != 23 {
		t.Fatalf("safety codes %q and %q", aa.SafetyCode, ab.SafetyCode)
	}
	ka, _ := alice.Channels().Share("bob", "")
	kb, _ := bob.Channels().Share("alice", "")
	if ka != kb {
		t.Fatal("the two sides hold different keys")
	}
	if n, _ := alice.Invites().Pending(); n != 0 {
		t.Fatalf("%d invitations still pending after completion", n)
	}
	// An invitation makes one channel. Completing or accepting it again
	// gives the same agreement back, marked Repeated, and makes nothing.
	again, err := alice.Invites().Complete("again", ab.Answer)
	if err != nil || !again.Repeated || again.Channel.ID != aa.Channel.ID || again.SafetyCode != aa.SafetyCode || again.Channel.Name != "bob" {
		t.Fatalf("second completion: %+v, %v; want the first agreement, repeated", again, err)
	}
	bagain, err := bob.Invites().Accept("alice2", inv)
	if err != nil || !bagain.Repeated || bagain.Answer != ab.Answer || bagain.Channel.ID != ab.Channel.ID || bagain.SafetyCode != ab.SafetyCode {
		t.Fatalf("second accept: %+v, %v; want the first agreement and answer, repeated", bagain, err)
	}
	for _, c := range []*Client{alice, bob} {
		if chs, _ := c.Channels().List(); len(chs) != 1 {
			t.Fatalf("%d channels after repeating, want 1", len(chs))
		}
	}
	// Someone else's answer to the same invitation is refused: it was
	// completed already.
	carol := openClient(t, home(t, "carol"))
	ac, err := carol.Invites().Accept("alice", inv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Invites().Complete("carol", ac.Answer); !errors.Is(err, ErrInvitationCompleted) || !strings.Contains(err.Error(), "another answer") {
		t.Fatalf("another answer after completion: %v, want ErrInvitationCompleted", err)
	}
	// Once the channel is left, a repeated accept makes a new agreement.
	if err := bob.Channels().Leave("alice"); err != nil {
		t.Fatal(err)
	}
	fresh, err := bob.Invites().Accept("alice", inv)
	if err != nil || fresh.Repeated || fresh.Answer == ab.Answer {
		t.Fatalf("accept after leaving: %+v, %v; want a new agreement", fresh, err)
	}
}

func TestInvitePersistsAcrossRestart(t *testing.T) {
	h := home(t, "alice")
	alice, err := Open(Config{Home: h, Create: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := alice.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()
	bob := openClient(t, home(t, "bob"))
	ab, err := bob.Invites().Accept("", inv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ab.Channel.Name, "invite-") {
		t.Fatalf("default name %q", ab.Channel.Name)
	}
	alice = openClient(t, h)
	aa, err := alice.Invites().Complete("bob", ab.Answer)
	if err != nil {
		t.Fatal(err)
	}
	if aa.SafetyCode != ab.SafetyCode {
		t.Fatal("safety codes differ after a restart")
	}
}

func TestInviteRejectsBadStrings(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	carol := openClient(t, home(t, "carol"))
	inv, _ := alice.Invites().Create()
	ab, err := bob.Invites().Accept("alice", inv)
	if err != nil {
		t.Fatal(err)
	}
	carolInv, _ := carol.Invites().Create()
	flip := func(s string, i int) string { // change one Base58 character
		b := []byte(s)
		if b[i] == 'z' {
			b[i] = 'y'
		} else {
			b[i] = 'z'
		}
		return string(b)
	}
	accept := func(s string) error { _, err := carol.Invites().Accept("", s); return err }
	complete := func(s string) error { _, err := alice.Invites().Complete("", s); return err }
	for _, tc := range []struct {
		name string
		do   func(string) error
		in   string
		want error
		text string
	}{
		{"tampered invitation", accept, flip(inv, 10), ErrBadInvitation, "checksum"},
		{"truncated invitation", accept, inv[:len(inv)-3], ErrBadInvitation, "truncated"},
		{"extended invitation", accept, inv + "2", ErrBadInvitation, "bad invitation"},
		{"bad character", accept, inv[:10] + "0" + inv[11:], ErrBadInvitation, "Base58"},
		{"not an invitation", accept, "hello", ErrBadInvitation, PrefixInvitation},
		{"answer given to accept", accept, ab.Answer, ErrWrongInvitationKind, "complete"},
		{"tampered answer", complete, flip(ab.Answer, 20), ErrBadInvitation, "checksum"},
		{"truncated answer", complete, ab.Answer[:len(ab.Answer)-1], ErrBadInvitation, "truncated"},
		{"invitation given to complete", complete, inv, ErrWrongInvitationKind, "accept"},
		{"answer to someone else's invitation", complete, mustAccept(t, bob, carolInv), ErrUnknownInvitation, "no invitation"},
		{"too long", accept, PrefixInvitation + strings.Repeat("2", 400), ErrBadInvitation, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(tc.in)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
	// Nothing was lost: the real answer still completes.
	aa, err := alice.Invites().Complete("bob", ab.Answer)
	if err != nil || aa.SafetyCode != ab.SafetyCode {
		t.Fatalf("real answer after the bad ones: %v", err)
	}
}

// A man in the middle who swaps both keys ends with the two sides on
// different channels, and the safety codes show it.
func TestInviteSwappedKeysShowInSafetyCode(t *testing.T) {
	alice := openClient(t, home(t, "alice"))
	bob := openClient(t, home(t, "bob"))
	mallory := openClient(t, home(t, "mallory"))
	inv, _ := alice.Invites().Create()
	malInv, _ := mallory.Invites().Create()
	ab, err := bob.Invites().Accept("alice", malInv) // Mallory replaced the invitation
	if err != nil {
		t.Fatal(err)
	}
	ma, err := mallory.Invites().Accept("alice", inv) // and answers Alice herself
	if err != nil {
		t.Fatal(err)
	}
	aa, err := alice.Invites().Complete("bob", ma.Answer)
	if err != nil {
		t.Fatal(err)
	}
	if aa.SafetyCode == ab.SafetyCode || aa.Channel.ID == ab.Channel.ID {
		t.Fatal("a swapped key left both sides with the same channel")
	}
}

func mustAccept(t *testing.T, c *Client, inv string) string {
	t.Helper()
	a, err := c.Invites().Accept("", inv)
	if err != nil {
		t.Fatal(err)
	}
	return a.Answer
}

// Invitation strings arrive over SMS or chat from anyone.
func FuzzParseInvitation(f *testing.F) {
	f.Add("rpx1111")
	f.Add(encodeInvite(PrefixInvitation, append([]byte{inviteVersion}, make([]byte, 32)...)))
	f.Add(encodeInvite(PrefixAnswer, append([]byte{inviteVersion}, make([]byte, 40)...)))
	f.Add(encodeInvite(PrefixInvitation, append(append([]byte{inviteVersion}, make([]byte, 32)...), make([]byte, 39)...)))
	f.Fuzz(func(t *testing.T, s string) {
		if pub, err := ParseInvitation(s); err == nil {
			_, hint, _ := decodeInvite(s, PrefixInvitation, 1+x25519Size)
			if len(pub) != x25519Size || len(hint) > channel.MaxHintBytes ||
				encodeInvite(PrefixInvitation, append(append([]byte{inviteVersion}, pub...), hint...)) != strings.TrimSpace(s) {
				t.Fatalf("accepted %q but it does not round-trip", s)
			}
		} else if !errors.Is(err, ErrBadInvitation) && !errors.Is(err, ErrWrongInvitationKind) {
			t.Fatalf("unwrapped error %v", err)
		}
		if tag, pub, err := ParseAnswer(s); err == nil && (len(tag) != inviteTagSize || len(pub) != x25519Size) {
			t.Fatalf("answer %q: tag %d, key %d bytes", s, len(tag), len(pub))
		}
	})
}

// An invitation left unanswered past InvitationLifetime is refused with
// ErrInvitationExpired and its private half deleted; a fresh one made
// later still completes, and making it prunes the stale one.
func TestInviteExpires(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	alice, err := Open(Config{Home: home(t, "alice"), Create: true, Logger: quiet(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob := openClient(t, home(t, "bob"))

	old, err := alice.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Invites().Create(); err != nil { // never answered
		t.Fatal(err)
	}
	now = now.Add(InvitationLifetime - time.Minute)
	if n, _ := alice.Invites().Pending(); n != 2 {
		t.Fatalf("%d pending just before expiry, want 2", n)
	}
	now = now.Add(2 * time.Minute)
	ab, err := bob.Invites().Accept("alice", old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Invites().Complete("bob", ab.Answer); !errors.Is(err, ErrInvitationExpired) {
		t.Fatalf("late answer: %v, want ErrInvitationExpired", err)
	}
	if _, err := alice.Invites().Complete("bob", ab.Answer); !errors.Is(err, ErrUnknownInvitation) {
		t.Fatalf("late answer again: %v, want ErrUnknownInvitation (the key is gone)", err)
	}
	fresh, err := alice.Invites().Create()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := alice.Invites().Pending(); n != 1 {
		t.Fatalf("%d pending after a new invitation, want 1 (the stale one pruned)", n)
	}
	ab, err = bob.Invites().Accept("alice2", fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Invites().Complete("bob", ab.Answer); err != nil {
		t.Fatalf("fresh invitation: %v", err)
	}
}
