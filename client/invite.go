package client

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mr-tron/base58"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Invitation by Diffie-Hellman over an untrusted text channel (paper §4.3,
// "via SMS"): the inviter prints an invitation holding a fresh X25519
// public key, the invitee answers with its own, and both derive the root
// secret of a new v2 channel from the shared secret. The strings follow the
// key-string style of node/channel (prefix + Base58(payload || checksum));
// the safety code lets both people see that nobody swapped a key on the way.

// Invitation string prefixes; distinct from every node/channel prefix.
const (
	PrefixInvitation = "rpx" // version (1) || inviter X25519 public key (32) || node hint (optional)
	PrefixAnswer     = "rpy" // version (1) || invitation tag (8) || invitee X25519 public key (32) || node hint (optional)
)

const (
	inviteVersion  = 1
	inviteTagSize  = 8
	inviteChecksum = 4
	x25519Size     = 32
	bucketInvites  = "invites" // inviter public key -> pending invitation
	maxInviteStr   = 320       // bound before Base58 decoding (quadratic); a hint makes it ~130
	labelInvite    = "redpanda/v2/invite-root"
	labelInviteTag = "redpanda/v2/invite-tag"
	labelSafety    = "redpanda/v2/safety-code"
)

// Errors of the invitation exchange.
var (
	// ErrBadInvitation: an invitation or answer string that is mistyped,
	// truncated, tampered with or of an unknown version.
	ErrBadInvitation = errors.New("client: bad invitation string")
	// ErrWrongInvitationKind: an answer given where an invitation is
	// expected, or the other way round.
	ErrWrongInvitationKind = errors.New("client: wrong kind of invitation string")
	// ErrUnknownInvitation: an answer to an invitation this client has no
	// pending record of (made elsewhere, or already completed).
	ErrUnknownInvitation = errors.New("client: answer to an unknown invitation")
	// ErrInvitationExpired: an answer to an invitation older than
	// InvitationLifetime; its private half has been deleted.
	ErrInvitationExpired = errors.New("client: invitation expired")
)

// InvitationLifetime is how long an invitation's private half is kept
// waiting for its answer. An invitation travels over a channel nobody
// trusts (an SMS); one left unanswered should not keep a usable key on
// the phone forever, and an answer arriving weeks later is more likely
// someone else's than the friend's.
const InvitationLifetime = 7 * 24 * time.Hour

// Agreement is what one side of a key agreement ends with.
type Agreement struct {
	Channel Channel
	// Answer is the string the invitee sends back (Invites.Accept only).
	Answer string
	// SafetyCode is the same on both sides unless someone substituted a
	// key in transit: the two people compare it by voice or in person.
	SafetyCode string
	// Repeated is true when this invitation (or answer) was used here
	// before: nothing new was made, this is the agreement of UsedAt.
	Repeated bool      `json:"repeated,omitempty"`
	UsedAt   time.Time `json:"used_at,omitzero"`
}

type inviteRecord struct {
	Private []byte    `json:"private"` // X25519 private key; nil once completed
	Created time.Time `json:"created"`
	// Done is what was agreed once the invitation was completed.
	Done *usedInvite `json:"done,omitempty"`
}

// invite implements Invites.Create.
func (c *Client) invite() (string, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("client.Invites.Create: %w", err)
	}
	pub := priv.PublicKey().Bytes()
	if _, err := c.pruneInvites(); err != nil {
		return "", fmt.Errorf("client.Invites.Create: %w", err)
	}
	rec, _ := json.Marshal(inviteRecord{Private: priv.Bytes(), Created: c.cfg.Now().UTC()})
	if err := c.db.Meta(bucketInvites).Put(pub, rec); err != nil {
		return "", fmt.Errorf("client.Invites.Create: %w", err)
	}
	return encodeInvite(PrefixInvitation, append(append([]byte{inviteVersion}, pub...), c.shareHint()...)), nil
}

// acceptInvite implements Invites.Accept.
func (c *Client) acceptInvite(name, invitation string) (*Agreement, error) {
	payload, inviterHint, err := decodeInvite(invitation, PrefixInvitation, 1+x25519Size)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	inviterPub := payload[1:]
	if ag, ok := c.acceptedBefore(inviterPub); ok {
		return ag, nil
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	root, err := inviteRoot(priv, inviterPub, inviterPub, priv.PublicKey().Bytes())
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	ag, err := c.agree(name, root)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	answer := append([]byte{inviteVersion}, inviteTag(inviterPub)...)
	answer = append(answer, priv.PublicKey().Bytes()...)
	ag.Answer = encodeInvite(PrefixAnswer, append(answer, c.shareHint()...))
	c.learnAgreedHint(inviterHint, "invitation", ag)
	if err := c.pruneAccepted(); err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	if err := c.rememberAccepted(inviterPub, ag); err != nil {
		return nil, fmt.Errorf("client.Invites.Accept: %w", err)
	}
	return ag, nil
}

// learnAgreedHint introduces the other side's home node with the channel
// just agreed, and updates this client's nodes.
func (c *Client) learnAgreedHint(h []byte, source string, ag *Agreement) {
	if ch, err := channel.ParseID(ag.Channel.ID); err == nil {
		c.learnHint(h, source, ch)
	}
	c.refreshSoon()
}

// completeInvite implements Invites.Complete.
func (c *Client) completeInvite(name, answer string) (*Agreement, error) {
	payload, inviteeHint, err := decodeInvite(answer, PrefixAnswer, 1+inviteTagSize+x25519Size)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: %w", err)
	}
	tag, inviteePub := payload[1:1+inviteTagSize], payload[1+inviteTagSize:]
	var pub, privBytes []byte
	var created time.Time
	var done *usedInvite
	err = c.db.Meta(bucketInvites).ForEach(func(k, v []byte) error {
		if bytes.Equal(inviteTag(k), tag) {
			var r inviteRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("invitation record: %w", err)
			}
			pub, privBytes, created, done = k, r.Private, r.Created, r.Done
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: %w", err)
	}
	if pub != nil && c.inviteExpired(created) {
		if err := c.db.Meta(bucketInvites).Delete(pub); err != nil {
			return nil, fmt.Errorf("client.Invites.Complete: forget the expired invitation: %w", err)
		}
		return nil, fmt.Errorf("client.Invites.Complete: %w: made %s, answers are taken for %s; send a new invitation",
			ErrInvitationExpired, created.Format(time.RFC3339), InvitationLifetime)
	}
	if pub == nil {
		return nil, fmt.Errorf("client.Invites.Complete: %w: no invitation made here matches this answer (made with another home?)", ErrUnknownInvitation)
	}
	if done != nil {
		ag, err := c.completedBefore(done, strings.TrimSpace(answer))
		if err != nil {
			return nil, fmt.Errorf("client.Invites.Complete: %w", err)
		}
		return ag, nil
	}
	priv, err := ecdh.X25519().NewPrivateKey(privBytes)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: invitation record: %w", err)
	}
	root, err := inviteRoot(priv, inviteePub, pub, inviteePub)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: %w", err)
	}
	ag, err := c.agree(name, root)
	if err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: %w", err)
	}
	// The private half goes; what was agreed stays, so that completing
	// again says so instead of "unknown invitation".
	if err := c.db.Meta(bucketInvites).Put(pub, c.completedRecord(created, strings.TrimSpace(answer), ag)); err != nil {
		return nil, fmt.Errorf("client.Invites.Complete: forget the invitation's private half: %w", err)
	}
	c.learnAgreedHint(inviteeHint, "answer", ag)
	return ag, nil
}

// pendingInvites implements Invites.Pending.
func (c *Client) pendingInvites() (int, error) {
	return c.pruneInvites()
}

func (c *Client) inviteExpired(created time.Time) bool {
	return c.cfg.Now().Sub(created) > InvitationLifetime
}

// pruneInvites deletes the private halves of expired invitations (and of
// records it cannot read, which could never complete) and counts the rest.
func (c *Client) pruneInvites() (int, error) {
	var stale [][]byte
	n := 0
	m := c.db.Meta(bucketInvites)
	err := m.ForEach(func(k, v []byte) error {
		var r inviteRecord
		if json.Unmarshal(v, &r) != nil || c.inviteExpired(r.Created) {
			stale = append(stale, k)
			return nil
		}
		if r.Done == nil {
			n++
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return 0, err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil {
			return n, fmt.Errorf("forget an expired invitation: %w", err)
		}
	}
	return n, nil
}

// agree joins the channel of root under name and computes the safety code.
func (c *Client) agree(name string, root []byte) (*Agreement, error) {
	k, err := channel.KeyFromSecret(root)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "invite-" + k.ID().String()[:8]
	}
	if err := c.addChannel(name, k); err != nil {
		return nil, err
	}
	c.channelChanged(channelItem(name, k))
	ch, err := c.channelInfo(name)
	if err != nil {
		return nil, err
	}
	return &Agreement{Channel: ch, SafetyCode: SafetyCode(root)}, nil
}

// inviteRoot is HKDF-SHA256 of the X25519 shared secret, with both public
// keys in a fixed order (inviter first) as context, so that both sides
// derive the same root and a key swapped in transit yields another.
func inviteRoot(priv *ecdh.PrivateKey, peerPub, inviterPub, inviteePub []byte) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInvitation, err)
	}
	shared, err := priv.ECDH(peer)
	if err != nil { // a low-order point: all-zero shared secret
		return nil, fmt.Errorf("%w: the public key is not usable: %v", ErrBadInvitation, err)
	}
	info := labelInvite + "\x00" + string(inviterPub) + string(inviteePub)
	return hkdf.Key(sha256.New, shared, nil, info, channel.SecretSize)
}

// inviteTag names an invitation inside its answer without repeating the
// whole public key, which keeps the answer short enough for one SMS.
func inviteTag(inviterPub []byte) []byte {
	h := sha256.Sum256(append([]byte(labelInviteTag+"\x00"), inviterPub...))
	return h[:inviteTagSize]
}

// SafetyCode turns a channel root secret into four groups of five digits
// (~66 bits) for two people to compare. Someone who substitutes keys in
// transit must make two different secrets collide on this code.
func SafetyCode(root []byte) string {
	h := sha256.Sum256(append([]byte(labelSafety+"\x00"), root...))
	groups := make([]string, 4)
	for i := range groups {
		v := binary.BigEndian.Uint64(h[i*8:]) % 100000
		groups[i] = fmt.Sprintf("%05d", v)
	}
	return strings.Join(groups, " ")
}

func encodeInvite(prefix string, payload []byte) string {
	sum := inviteSum(prefix, payload)
	return prefix + base58.Encode(append(append([]byte(nil), payload...), sum[:inviteChecksum]...))
}

func inviteSum(prefix string, payload []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(prefix))
	h.Write(payload)
	return sha256.Sum256(h.Sum(nil))
}

// ParseInvitation checks an invitation string and returns the inviter's
// X25519 public key.
func ParseInvitation(s string) ([]byte, error) {
	p, _, err := decodeInvite(s, PrefixInvitation, 1+x25519Size)
	if err != nil {
		return nil, err
	}
	return p[1:], nil
}

// ParseAnswer checks an answer string and returns the tag of the
// invitation it answers and the invitee's X25519 public key.
func ParseAnswer(s string) (tag, pub []byte, err error) {
	p, _, err := decodeInvite(s, PrefixAnswer, 1+inviteTagSize+x25519Size)
	if err != nil {
		return nil, nil, err
	}
	return p[1 : 1+inviteTagSize], p[1+inviteTagSize:], nil
}

// decodeInvite checks s strictly: prefix, alphabet, length, checksum,
// version, and that the key is a usable X25519 point. It returns the
// payload (size bytes) and the node hint after it (nil when none; at most
// channel.MaxHintBytes, unread).
func decodeInvite(s, prefix string, size int) (payload, hint []byte, err error) {
	s = strings.TrimSpace(s)
	if len(s) > maxInviteStr {
		return nil, nil, fmt.Errorf("%w: %d characters, longer than any invitation", ErrBadInvitation, utf8.RuneCountInString(s))
	}
	other := map[string]string{PrefixInvitation: PrefixAnswer, PrefixAnswer: PrefixInvitation}[prefix]
	switch {
	case strings.HasPrefix(s, other) && prefix == PrefixInvitation:
		return nil, nil, fmt.Errorf("%w: this is an answer (%s…); give it to `redpanda complete` on the inviting side", ErrWrongInvitationKind, other)
	case strings.HasPrefix(s, other):
		return nil, nil, fmt.Errorf("%w: this is an invitation (%s…); give it to `redpanda accept` on the invited side", ErrWrongInvitationKind, other)
	case !strings.HasPrefix(s, prefix):
		return nil, nil, fmt.Errorf("%w: it must start with %q", ErrBadInvitation, prefix)
	}
	body := s[len(prefix):]
	for i, r := range body {
		if r >= utf8.RuneSelf || !strings.ContainsRune(base58Alphabet, r) {
			return nil, nil, fmt.Errorf("%w: character %q at position %d is not in the Base58 alphabet", ErrBadInvitation, r, len(prefix)+i+1)
		}
	}
	raw, err := base58.Decode(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadInvitation, err)
	}
	if len(raw) < size+inviteChecksum || len(raw) > size+channel.MaxHintBytes+inviteChecksum {
		return nil, nil, fmt.Errorf("%w: %d bytes, want %d to %d: the string is truncated or has extra characters", ErrBadInvitation, len(raw), size+inviteChecksum, size+channel.MaxHintBytes+inviteChecksum)
	}
	signed, sum := raw[:len(raw)-inviteChecksum], raw[len(raw)-inviteChecksum:]
	payload = signed[:size]
	if len(signed) > size {
		hint = signed[size:]
	}
	want := inviteSum(prefix, signed)
	if !bytes.Equal(sum, want[:inviteChecksum]) {
		return nil, nil, fmt.Errorf("%w: checksum mismatch: the string was mistyped or changed on the way", ErrBadInvitation)
	}
	if payload[0] != inviteVersion {
		return nil, nil, fmt.Errorf("%w: version %d, this client speaks %d (update it)", ErrBadInvitation, payload[0], inviteVersion)
	}
	if _, err := ecdh.X25519().NewPublicKey(payload[size-x25519Size:]); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadInvitation, err)
	}
	return payload, hint, nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
