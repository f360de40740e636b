package admin

import (
	"context"

	"github.com/redpanda-p2p/homenode/status"
)

// CmdHealth asks whether the node is up: ready, store answering, host
// listening (status.Health). The firmware update's commit step asks it.
const CmdHealth = "health"

// HealthBackend is a backend that can say whether it is up.
type HealthBackend interface {
	Health(ctx context.Context) (status.Health, error)
}

// Health asks the node whether it is up.
func (c *Client) Health(ctx context.Context) (status.Health, error) {
	return call[status.Health](ctx, c, CmdHealth, "")
}
