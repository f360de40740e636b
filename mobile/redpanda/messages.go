package redpanda

import (
	"context"
	"errors"
	"fmt"

	"github.com/redpanda-p2p/homenode/client"
)

// notDeliveredIsNoError: a message no node took is kept and goes out
// later; for the app that is a state of the message, not a failure.
func notDeliveredIsNoError(err error) error {
	if errors.Is(err, client.ErrNotDelivered) {
		return nil
	}
	return err
}

// Send posts text to the named channel: sealed, stored on the phone,
// pushed to this client's nodes. It returns once a node holds it durably
// (Delivered), or, when none does within the timeout, with Delivered
// false: the message is kept and goes out by itself later. It arrives at
// the Listener too (Mine).
func (c *Client) Send(channelName, text string, timeoutMs int64, cancel *Cancel) (*SendResult, error) {
	var r client.SendResult
	err := c.long(timeoutMs, msDuration(DefaultSendTimeoutMs), cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) (err error) {
		r, err = sdk.Send(ctx, channelName, text)
		if errors.Is(err, client.ErrNotDelivered) && r.ID != "" {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SendResult{ID: r.ID, Delivered: len(r.AckedBy) > 0, ackedBy: r.AckedBy, failed: r.Failed}, nil
}

// History returns the last limit messages of the named channel, oldest
// first, with their receipts (limit <= 0: all of them).
func (c *Client) History(channelName string, limit int) (*MessageList, error) {
	var ms []client.Message
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		ms, err = sdk.History(channelName, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toMessages(ms), nil
}

// HistoryBefore returns up to limit messages that come before the message
// beforeID ("": the newest), oldest first: a chat screen pages back with
// the ID of the oldest message it shows, until a page is empty.
func (c *Client) HistoryBefore(channelName, beforeID string, limit int) (*MessageList, error) {
	if limit <= 0 {
		return nil, failCode(CodeBadInput, fmt.Sprintf("history page of %d messages", limit))
	}
	var ms []client.Message
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		ms, err = sdk.HistoryBefore(channelName, beforeID, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toMessages(ms), nil
}
