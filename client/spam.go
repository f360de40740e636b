package client

import (
	"errors"
	"fmt"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Spam (paper §4.5): a user blocks a channel that floods them. The
// client forgets its key, stops syncing it and refuses to join it again
// until unblocked. The node's side is `homenode block`.
const bucketBlocked = "blocked" // channel ID -> local name it had

// ErrBlocked: the channel is blocked on this client.
var ErrBlocked = errors.New("client: channel blocked")

// blockChannel implements Channels.Block.
func (c *Client) blockChannel(name string) error {
	cs, err := c.byName(name)
	if err != nil {
		return fmt.Errorf("client.Channels.Block: %w", err)
	}
	if internalChannel(name) {
		return fmt.Errorf("client.Channels.Block: %w: %s is this identity's own", ErrBadName, name)
	}
	id := cs.key.ID()
	if err := c.db.Meta(bucketBlocked).Put(id[:], []byte(name)); err != nil {
		return fmt.Errorf("client.Channels.Block: %w", err)
	}
	if err := c.leave(name, goneBlocked); err != nil {
		return fmt.Errorf("client.Channels.Block: %w", err)
	}
	return nil
}

// unblockChannel implements Channels.Unblock.
func (c *Client) unblockChannel(idHex string) error {
	id, err := channel.ParseID(idHex)
	if err != nil {
		return fmt.Errorf("client.Channels.Unblock: %w", err)
	}
	if !c.blocked(id) {
		return nil
	}
	if err := c.db.Meta(bucketBlocked).Delete(id[:]); err != nil {
		return fmt.Errorf("client.Channels.Unblock: %w", err)
	}
	c.share(stateItem{Kind: itemChannel, ID: id.String(), Gone: goneLeft})
	return nil
}

func (c *Client) blocked(id channel.ID) bool {
	v, _ := c.db.Meta(bucketBlocked).Get(id[:])
	return v != nil
}
