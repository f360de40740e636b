package client

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/p2p"
)

// ErrUnknownNode: no super node of that peer ID is known.
var ErrUnknownNode = errors.New("client: unknown node")

// RemoveNode forgets a super node (by peer ID): its record, the
// statements handed to it and, if it is the node this client owns, that
// mark; connections to it close. The node itself keeps this client's
// registration until it expires. A node a channel member advertises again
// comes back as an advertised node.
func (c *Client) RemoveNode(nodeID string) error {
	if c.isClosed() {
		return ErrClosed
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return fmt.Errorf("client.RemoveNode: peer ID %q: %w", nodeID, err)
	}
	recs, err := c.nodeRecords()
	if err != nil {
		return fmt.Errorf("client.RemoveNode: %w", err)
	}
	if _, ok := recs[p]; !ok {
		return fmt.Errorf("client.RemoveNode: %w: %s", ErrUnknownNode, p)
	}
	c.procMu.Lock() // node records are read-modify-written under procMu
	err = c.db.Meta(bucketNodes).Delete([]byte(p))
	c.procMu.Unlock()
	if err != nil {
		return fmt.Errorf("client.RemoveNode: %w", err)
	}
	if owned, err := c.db.Meta(bucketSelf).Get(keyOwns); err == nil && bytes.Equal(owned, []byte(p)) {
		if err := c.db.Meta(bucketSelf).Delete(keyOwns); err != nil {
			return fmt.Errorf("client.RemoveNode: %w", err)
		}
	}
	c.forgetStatements(p)
	c.mu.Lock()
	delete(c.rtt, p.String())
	c.mu.Unlock()
	p2p.Unprotect(c.h, p, "redpanda-client-node")
	_ = c.h.Network().ClosePeer(p)
	return nil
}
