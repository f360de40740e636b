package client

import (
	"context"
)

// Cover is the cover traffic: dust channels shared with friends and the
// dust sent into them so that real messages do not stand out (cover.go).
// Get one with Client.Cover.
type Cover struct{ c *Client }

// Cover is the client's cover traffic (facade_cover.go).
func (c *Client) Cover() Cover { return Cover{c} }

// Channels.Create makes a dust channel to share with a friend and
// returns its key string.
func (cv Cover) CreateChannel(name string) (string, error) {
	return cv.c.createDustChannel(name)
}

// Channels.Join adds a dust channel a friend shared.
func (cv Cover) JoinChannel(name, key string) error {
	return cv.c.joinDustChannel(name, key)
}

// Send posts one dust message to a random dust channel.
func (cv Cover) Send(ctx context.Context) (SendResult, error) {
	return cv.c.sendDust(ctx)
}

// Run sends dust at random intervals until ctx ends. It
// returns ErrCoverOff at once when cfg disables it or the connection is
// metered.
func (cv Cover) Run(ctx context.Context, cfg CoverConfig) error {
	return cv.c.runCoverTraffic(ctx, cfg)
}
