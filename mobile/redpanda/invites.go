package redpanda

import (
	"context"

	"github.com/redpanda-p2p/homenode/client"
)

// Invite makes an invitation string for a new channel with someone, to
// send over SMS or any text channel; their phone answers (AcceptInvite)
// and this one completes it with the answer (CompleteInvite). Unanswered
// invitations expire after 7 days.
func (c *Client) Invite() (string, error) {
	var s string
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		s, err = sdk.Invites().Create()
		return err
	})
	return s, err
}

// AcceptInvite answers an invitation: it joins the new channel under
// name ("": named after its ID) and returns the Agreement, whose Answer
// goes back to the inviter. Compare the SafetyCode with theirs.
func (c *Client) AcceptInvite(name, invitation string) (*Agreement, error) {
	return c.agree(func(sdk *client.Client) (*client.Agreement, error) { return sdk.Invites().Accept(name, invitation) })
}

// CompleteInvite finishes an invitation this home made, with the answer
// that came back, and joins the channel under name.
func (c *Client) CompleteInvite(name, answer string) (*Agreement, error) {
	return c.agree(func(sdk *client.Client) (*client.Agreement, error) { return sdk.Invites().Complete(name, answer) })
}

func (c *Client) agree(fn func(sdk *client.Client) (*client.Agreement, error)) (*Agreement, error) {
	var a *client.Agreement
	err := c.local(CodeBadInvitation, func(sdk *client.Client) (err error) {
		a, err = fn(sdk)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toAgreement(a), nil
}

// PendingInvites is how many invitations wait for an answer.
func (c *Client) PendingInvites() (int, error) {
	var n int
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		n, err = sdk.Invites().Pending()
		return err
	})
	return n, err
}

// AgreeViaFriends makes a channel named name with the person whose
// identity is peerID through the channels named in via, each shared with
// a different friend (LookupResult.Via): safe while one path is honest.
// The other phone calls AcceptViaFriends.
func (c *Client) AgreeViaFriends(name, peerID string, via *StringList, timeoutMs int64, cancel *Cancel) (*Agreement, error) {
	return c.agreeLong(timeoutMs, cancel, func(ctx context.Context, sdk *client.Client) (*client.Agreement, error) {
		return sdk.Friends().Agree(ctx, name, peerID, via.slice())
	})
}

// AcceptViaFriends waits for an agreement peerID starts through friends
// (AgreeViaFriends) and joins the new channel as name.
func (c *Client) AcceptViaFriends(name, peerID string, timeoutMs int64, cancel *Cancel) (*Agreement, error) {
	return c.agreeLong(timeoutMs, cancel, func(ctx context.Context, sdk *client.Client) (*client.Agreement, error) {
		return sdk.Friends().Accept(ctx, name, peerID)
	})
}

func (c *Client) agreeLong(timeoutMs int64, cancel *Cancel, fn func(ctx context.Context, sdk *client.Client) (*client.Agreement, error)) (*Agreement, error) {
	var a *client.Agreement
	err := c.long(timeoutMs, msDuration(DefaultBackupTimeoutMs), cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) (err error) {
		a, err = fn(ctx, sdk)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toAgreement(a), nil
}
