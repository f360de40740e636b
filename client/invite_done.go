package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/node/store"
)

// A person who runs `accept` or `complete` a second time (the answer did
// not arrive, the terminal was closed) must learn that the invitation was
// already used, not make a second channel the other side never hears of.
// Each side keeps what it agreed on for InvitationLifetime and gives the
// same agreement back, marked Repeated.

// ErrInvitationCompleted: an answer to an invitation that was already
// completed with a different answer: an invitation makes one channel.
var ErrInvitationCompleted = errors.New("client: invitation already completed")

// bucketInvitesAccepted maps an inviter's public key to the agreement
// this client made when it accepted that invitation.
const bucketInvitesAccepted = "invites-accepted"

// usedInvite is what one side remembers of an invitation it used.
type usedInvite struct {
	Channel    string    `json:"channel"`
	ChannelID  string    `json:"channel_id"`
	Answer     string    `json:"answer"`
	SafetyCode string    `json:"safety_code"`
	At         time.Time `json:"at"`
}

// agreement gives back a remembered agreement while its channel is still
// there (same name, same ID); ok is false once it was left or is stale.
func (c *Client) agreement(u usedInvite) (*Agreement, bool) {
	if c.cfg.Now().Sub(u.At) > InvitationLifetime {
		return nil, false
	}
	ch, err := c.channelInfo(u.Channel)
	if err != nil || ch.ID != u.ChannelID {
		return nil, false
	}
	return &Agreement{Channel: ch, Answer: u.Answer, SafetyCode: u.SafetyCode, Repeated: true, UsedAt: u.At}, true
}

// acceptedBefore returns the agreement made when this client accepted the
// invitation of inviterPub before, if it still stands.
func (c *Client) acceptedBefore(inviterPub []byte) (*Agreement, bool) {
	v, err := c.db.Meta(bucketInvitesAccepted).Get(inviterPub)
	if err != nil {
		return nil, false
	}
	var u usedInvite
	if json.Unmarshal(v, &u) != nil {
		return nil, false
	}
	return c.agreement(u)
}

// rememberAccepted keeps ag for a repeated accept of the same invitation.
func (c *Client) rememberAccepted(inviterPub []byte, ag *Agreement) error {
	b, _ := json.Marshal(usedInvite{Channel: ag.Channel.Name, ChannelID: ag.Channel.ID, Answer: ag.Answer,
		SafetyCode: ag.SafetyCode, At: c.cfg.Now().UTC()})
	return c.db.Meta(bucketInvitesAccepted).Put(inviterPub, b)
}

// completedRecord is an invitation record after completion: the private
// half is gone, what was agreed stays until the record expires.
func (c *Client) completedRecord(created time.Time, answer string, ag *Agreement) []byte {
	b, _ := json.Marshal(inviteRecord{Created: created, Done: &usedInvite{Channel: ag.Channel.Name,
		ChannelID: ag.Channel.ID, Answer: answer, SafetyCode: ag.SafetyCode, At: c.cfg.Now().UTC()}})
	return b
}

// completedBefore answers a `complete` of an invitation already completed:
// the same answer gives the agreement again, another answer is refused.
func (c *Client) completedBefore(done *usedInvite, answer string) (*Agreement, error) {
	ag, ok := c.agreement(*done)
	switch {
	case ok && done.Answer == answer:
		return ag, nil
	case ok:
		return nil, fmt.Errorf("%w on %s with another answer (channel %s): an invitation makes one channel; send a new invitation",
			ErrInvitationCompleted, done.At.Local().Format("2006-01-02 15:04"), done.Channel)
	}
	return nil, fmt.Errorf("%w on %s (channel %s, since left); send a new invitation",
		ErrInvitationCompleted, done.At.Local().Format("2006-01-02 15:04"), done.Channel)
}

// pruneAccepted forgets accepted invitations older than
// InvitationLifetime.
func (c *Client) pruneAccepted() error {
	m := c.db.Meta(bucketInvitesAccepted)
	var stale [][]byte
	err := m.ForEach(func(k, v []byte) error {
		var u usedInvite
		if json.Unmarshal(v, &u) != nil || c.cfg.Now().Sub(u.At) > InvitationLifetime {
			stale = append(stale, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
