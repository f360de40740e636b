package client

import (
	"context"
)

// Channels is the client's channels: making, joining, sharing and leaving
// them, blocking a spam channel, and posting a channel's history as a block
// for later members. Get one with Client.Channels; it is a view of the
// client and safe for concurrent use like it.
type Channels struct{ c *Client }

// Channels is the client's channels (facade_channels.go).
func (c *Client) Channels() Channels { return Channels{c} }

// PostBlock snapshots the named channel's history (all of it) into a
// signed block and posts it, in chunks if large. Members who receive it
// merge it into their history. Like Send, it returns ErrNotDelivered
// when no node acknowledged a chunk (kept locally, sent later).
func (ch Channels) PostBlock(ctx context.Context, name string) (BlockResult, error) {
	return ch.c.postBlock(ctx, name)
}

// Create makes a new channel with full access under name and
// returns its full key string (what members join with), with the hint of
// this client's home node when it has one.
func (ch Channels) Create(name string) (string, error) {
	return ch.c.createChannel(name)
}

// Join adds the channel of keyString (any capability) under name.
// The node hint the string may carry (where the sharer's home node is) is
// introduced to this client's own home nodes.
func (ch Channels) Join(name, keyString string) (Channel, error) {
	return ch.c.joinChannel(name, keyString)
}

// List lists the client's channels by name.
func (ch Channels) List() ([]Channel, error) {
	return ch.c.channels()
}

// Get describes the named channel, or fails with ErrUnknownChannel.
func (ch Channels) Get(name string) (Channel, error) {
	return ch.c.channel(name)
}

// Share returns the key string of capability ("full", "read" or
// "write"; "" means the client's own) for the named channel, with a hint
// of where this client's home node is when it has one (Channels.ShareKey).
func (ch Channels) Share(name, capability string) (string, error) {
	return ch.c.shareChannel(name, capability)
}

// ShareKey is Channels.Share choosing whether the string carries the
// node hint (a client that predates hints reads only strings without).
func (ch Channels) ShareKey(name, capability string, withHint bool) (string, error) {
	return ch.c.shareChannelKey(name, capability, withHint)
}

// Leave forgets the channel's key and stops syncing it, here and
// on the identity's other devices. Its history stays in the home:
// joining the channel again shows it.
func (ch Channels) Leave(name string) error {
	return ch.c.leaveChannel(name)
}

// Block blocks the named channel.
func (ch Channels) Block(name string) error {
	return ch.c.blockChannel(name)
}

// Unblock lifts a block by channel ID (hex), here and on the
// identity's other devices; the channel is not joined again.
func (ch Channels) Unblock(idHex string) error {
	return ch.c.unblockChannel(idHex)
}
