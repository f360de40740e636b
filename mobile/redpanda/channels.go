package redpanda

import (
	"context"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/redpanda-p2p/homenode/client"
)

// CreateChannel makes a new channel under name (1-64 printable
// characters, no spaces) and returns its full key string: what members
// join with. It carries a hint of this identity's home node, so a
// friend's phone finds the node by itself.
func (c *Client) CreateChannel(name string) (string, error) {
	var key string
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		key, err = sdk.Channels().Create(name)
		return err
	})
	return key, err
}

// JoinChannel adds the channel of a key string (any capability) under
// name.
func (c *Client) JoinChannel(name, key string) (*Channel, error) {
	var ch client.Channel
	err := c.local(CodeBadKey, func(sdk *client.Client) (err error) {
		ch, err = sdk.Channels().Join(name, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toChannel(ch), nil
}

// Channels lists the channels, by name.
func (c *Client) Channels() (*ChannelList, error) {
	l := &ChannelList{}
	err := c.local(CodeInternal, func(sdk *client.Client) error {
		chs, err := sdk.Channels().List()
		for _, ch := range chs {
			l.items = append(l.items, toChannel(ch))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Channel describes the named channel.
func (c *Client) Channel(name string) (*Channel, error) {
	var ch client.Channel
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		ch, err = sdk.Channels().Get(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toChannel(ch), nil
}

// ShareChannel returns the key string to give a member: capability
// "full" (read and write), "read", "write" (post, not read) or "" (this
// client's own). withHint adds where this identity's home node is (leave
// it out only for an app that predates hints).
func (c *Client) ShareChannel(name, capability string, withHint bool) (string, error) {
	var key string
	err := c.local(CodeBadInput, func(sdk *client.Client) (err error) {
		key, err = sdk.Channels().ShareKey(name, capability, withHint)
		return err
	})
	return key, err
}

// ShareChannelQR is ShareChannel (with the hint) as a QR code: a PNG of
// size x size pixels (at least 64) for the other phone to scan.
func (c *Client) ShareChannelQR(name, capability string, size int) ([]byte, error) {
	key, err := c.ShareChannel(name, capability, true)
	if err != nil {
		return nil, err
	}
	return QRCodePNG(key, size)
}

// LeaveChannel forgets the channel's key and stops syncing it; its
// history stays (joining again shows it).
func (c *Client) LeaveChannel(name string) error {
	return c.local(CodeInternal, func(sdk *client.Client) error { return sdk.Channels().Leave(name) })
}

// BlockChannel forgets a flooding channel and refuses to join it again.
func (c *Client) BlockChannel(name string) error {
	return c.local(CodeInternal, func(sdk *client.Client) error { return sdk.Channels().Block(name) })
}

// UnblockChannel lifts BlockChannel for a channel ID (hex).
func (c *Client) UnblockChannel(channelID string) error {
	return c.local(CodeBadInput, func(sdk *client.Client) error { return sdk.Channels().Unblock(channelID) })
}

// PostBlock posts a signed snapshot of the channel's whole history, so
// members who join later (or lost theirs) see what is older than the 7
// days nodes keep.
func (c *Client) PostBlock(name string, timeoutMs int64, cancel *Cancel) (*BlockResult, error) {
	var r client.BlockResult
	err := c.long(timeoutMs, msDuration(DefaultSendTimeoutMs), cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) (err error) {
		r, err = sdk.Channels().PostBlock(ctx, name)
		return notDeliveredIsNoError(err)
	})
	if err != nil {
		return nil, err
	}
	res := &BlockResult{Hash: r.Hash, Messages: r.Messages, Chunks: r.Chunks, Delivered: true}
	for _, s := range r.Sends {
		if len(s.AckedBy) == 0 {
			res.Delivered = false
		}
	}
	return res, nil
}

// QRCodePNG draws text (a key string, a ticket, an invitation, a device
// link) as a QR code: a PNG of size x size pixels, at least 64.
func QRCodePNG(text string, size int) ([]byte, error) {
	if size < 64 {
		return nil, failCode(CodeBadInput, fmt.Sprintf("QR code of %d pixels: at least 64", size))
	}
	png, err := qrcode.Encode(text, qrcode.Low, size)
	if err != nil {
		return nil, fail(err, CodeBadInput)
	}
	return png, nil
}

// QRCodeText draws text as a QR code in text: half-block characters, two
// modules a character, dark on light, quiet zone included (for a
// monospaced view or a log).
func QRCodeText(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return "", fail(err, CodeBadInput)
	}
	return q.ToSmallString(false), nil
}
