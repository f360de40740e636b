package client

import (
	"context"
	"time"
)

// Devices is the identity's other devices: linking and unlinking them and
// the state they share through the master channel (docs/DEVICES.md). Get
// one with Client.Devices.
type Devices struct{ c *Client }

// Devices is the identity's devices (facade_devices.go).
func (c *Client) Devices() Devices { return Devices{c} }

// Link returns a link string for a new device of this identity,
// valid for ttl (default DefaultLinkLifetime). It makes the master and
// node channels first if this is the identity's first device, and posts
// a snapshot of the identity's state (channels, nodes, tickets) in the
// master channel, which the new device reads from the nodes the link's
// hint names.
func (d Devices) Link(ctx context.Context, ttl time.Duration) (string, error) {
	return d.c.linkDevice(ctx, ttl)
}

// List lists the identity's devices the master channel announced.
func (d Devices) List() ([]Device, error) {
	return d.c.devices()
}

// Unlink tells the other devices that this one leaves. It keeps
// its keys: a device that was lost calls for a new identity (docs/DEVICES.md).
func (d Devices) Unlink(ctx context.Context) error {
	return d.c.unlinkDevice(ctx)
}

// HasState reports whether this device holds the identity's state:
// it is the identity's first device, or it applied a whole snapshot from
// another device.
func (d Devices) HasState() bool {
	return d.c.hasDeviceState()
}

// WaitState waits until this device has applied a whole snapshot of
// the identity's state posted by another device (channels, nodes,
// tickets), as a newly joined device does once it reaches a node. It
// returns at once if that happened before.
func (d Devices) WaitState(ctx context.Context) error {
	return d.c.waitDeviceState(ctx)
}
