package redpanda

import (
	"context"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// LinkDevice returns a device link string for another device of this
// identity (a tablet, a second phone), valid for ttlSeconds (<= 0: 10
// minutes). It is a secret: it is the identity. Show it as a QR code
// (QRCodePNG) to the new device, which calls JoinDevice.
func (c *Client) LinkDevice(ttlSeconds int64, timeoutMs int64, cancel *Cancel) (string, error) {
	var link string
	err := c.long(timeoutMs, msDuration(DefaultNodeTimeoutMs), cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) (err error) {
		link, err = sdk.Devices().Link(ctx, time.Duration(ttlSeconds)*time.Second)
		return err
	})
	return link, err
}

// JoinDevice makes this device a new device of the identity in a link
// string (LinkDevice on the other device), in an empty home, and opens
// it. The other devices' channels arrive once it is connected (Connect).
func JoinDevice(opts *Options, link, deviceName string, timeoutMs int64, cancel *Cancel) (*Client, error) {
	if opts == nil || opts.Home == "" {
		return nil, failCode(CodeBadInput, "redpanda.JoinDevice: no home directory")
	}
	log, err := newLogger(opts.LogLevel)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: *opts, log: log}
	ctx, stop := callContext(context.Background(), timeoutMs, msDuration(DefaultNodeTimeoutMs), cancel)
	defer stop()
	sdk, err := client.JoinDevice(ctx, c.sdkConfig(), link, deviceName)
	if err != nil {
		return nil, ctxFail(err, ctx, cancel, func() int { return 0 }, CodeInternal)
	}
	return c.start(sdk), nil
}

// Devices lists the identity's devices.
func (c *Client) Devices() (*DeviceList, error) {
	l := &DeviceList{}
	err := c.local(CodeInternal, func(sdk *client.Client) error {
		ds, err := sdk.Devices().List()
		for _, d := range ds {
			l.items = append(l.items, &Device{Peer: d.Peer, Name: d.Name, JoinedMs: ms(d.Joined), Self: d.Self})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// UnlinkDevice tells the other devices that this one leaves (it keeps
// its keys: a lost device calls for a new identity).
func (c *Client) UnlinkDevice(timeoutMs int64, cancel *Cancel) error {
	return c.long(timeoutMs, msDuration(DefaultNodeTimeoutMs), cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) error {
		return sdk.Devices().Unlink(ctx)
	})
}
