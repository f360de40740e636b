package client

import (
	"context"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// register is replaced by registration through node/routing once it lands.
func (c *Client) register(context.Context) error { return nil }

// handleControl is replaced by advert handling through node/routing.
func (c *Client) handleControl(*chanState, *channel.Message) {}
