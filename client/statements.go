package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
)

// Serving statements (issue 5): a super node serves and provides a channel
// in the DHT only with a statement signed by the channel's write key. The
// client hands each node it is registered at one statement per channel it
// can write (full or write-only key), after registering and again before
// the statement runs out. A read-only member cannot sign one; the node
// then relies on another member's.
const (
	// StatementLifetime is how long a handed-over statement is valid.
	// Short, because a statement cannot be revoked (docs/DHT.md).
	StatementLifetime = 7 * 24 * time.Hour
	// statementRenew: a statement is replaced once it has less than this
	// left, so an offline week-end does not let it lapse.
	statementRenew = 2 * 24 * time.Hour
	// statementRetry: after a failed hand-over (a node without the DHT, a
	// refusal) the client tries again this much later, not on every tick.
	statementRetry  = 10 * time.Minute
	handOverTimeout = 20 * time.Second
)

// statementPrefix + node peer ID + "/" + channel ID: when the statement
// for that pair is next due (Unix seconds, 8 bytes big endian).
var statementPrefix = []byte("statement/")

func statementKey(p peer.ID, ch channel.ID) []byte {
	k := append(append([]byte{}, statementPrefix...), []byte(p)...)
	k = append(k, '/')
	return append(k, ch[:]...)
}

// writableKeys returns the keys of the channels this client can sign
// statements for.
func (c *Client) writableKeys() []*channel.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*channel.Key
	for _, cs := range c.chans {
		if cs.key.CanWrite() {
			out = append(out, cs.key)
		}
	}
	return out
}

// registeredNodes are the nodes whose last registration succeeded.
func (c *Client) registeredNodes() []peer.ID {
	recs, err := c.nodeRecords()
	if err != nil {
		return nil
	}
	var out []peer.ID
	for p, r := range recs {
		if r.Registered {
			out = append(out, p)
		}
	}
	return out
}

func (c *Client) statementDue(p peer.ID, ch channel.ID) time.Time {
	v, err := c.db.Meta(bucketSelf).Get(statementKey(p, ch))
	if err != nil || len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v)), 0)
}

func (c *Client) setStatementDue(p peer.ID, ch channel.ID, due time.Time) {
	v := binary.BigEndian.AppendUint64(nil, uint64(due.Unix()))
	if err := c.db.Meta(bucketSelf).Put(statementKey(p, ch), v); err != nil {
		c.log.Warn("statement record", "node", p, "err", err)
	}
}

// statementsDue reports whether some registered node needs a statement
// now (none handed over yet, one about to run out, or a retry).
func (c *Client) statementsDue() bool {
	now := c.cfg.Now()
	keys := c.writableKeys()
	for _, p := range c.registeredNodes() {
		for _, k := range keys {
			if !now.Before(c.statementDue(p, k.ID())) {
				return true
			}
		}
	}
	return false
}

// handOverStatements gives the nodes a registration round just
// registered at fresh statements for the writable channels whose
// statement is due, of the channels that round listed (registered): a
// channel made while the round was on its way is not in the nodes'
// registrations yet, so they would refuse its statement, and the refusal
// would put it off for statementRetry (a channel agreed by invitation
// right after a node restarted stayed unserved there for ten minutes);
// the next round, which lists it, hands it over. Failures are logged and
// retried later: a node without the DHT still relays for its registered
// users, it just cannot be found by other super nodes.
func (c *Client) handOverStatements(ctx context.Context, nodes []peer.ID, registered []channel.ID) {
	now := c.cfg.Now()
	keys := slices.DeleteFunc(c.writableKeys(), func(k *channel.Key) bool { return !slices.Contains(registered, k.ID()) })
	if len(keys) == 0 {
		return
	}
	for _, p := range nodes {
		var sts []*discovery.Statement
		for _, k := range keys {
			if now.Before(c.statementDue(p, k.ID())) {
				continue
			}
			st, err := discovery.IssueStatement(k, p, now.Add(StatementLifetime))
			if err != nil {
				c.log.Warn("cannot sign a serving statement", "channel", k.ID(), "err", err)
				continue
			}
			sts = append(sts, st)
		}
		for len(sts) > 0 {
			batch := sts[:min(len(sts), discovery.MaxStatementsPerFrame)]
			sts = sts[len(batch):]
			c.handOverBatch(ctx, p, batch, now)
		}
	}
}

func (c *Client) handOverBatch(ctx context.Context, p peer.ID, batch []*discovery.Statement, now time.Time) {
	hctx, cancel := context.WithTimeout(ctx, handOverTimeout)
	n, err := discovery.HandOver(hctx, c.h, p, batch)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// Which statements a partial refusal hit is not said; all are
		// retried, a repeat is harmless.
		lvl := "statements refused"
		if n == 0 && !errors.Is(err, discovery.ErrNotAuthorized) {
			lvl = "statements not handed over (does the node run the DHT?)"
		}
		c.log.Info(lvl, "node", p, "accepted", n, "of", len(batch), "err", err)
		for _, st := range batch {
			c.setStatementDue(p, st.Channel, now.Add(statementRetry))
		}
		return
	}
	c.log.Debug("statements handed over", "node", p, "count", n)
	for _, st := range batch {
		c.setStatementDue(p, st.Channel, st.Until.Add(-statementRenew))
	}
}

// forgetStatements drops the hand-over records of node p, so that the
// next registration hands it everything again (after a factory reset the
// node has forgotten them).
func (c *Client) forgetStatements(p peer.ID) {
	prefix := append(append([]byte{}, statementPrefix...), []byte(p)...)
	prefix = append(prefix, '/')
	var ks [][]byte
	_ = c.db.Meta(bucketSelf).ForEach(func(k, _ []byte) error {
		if bytes.HasPrefix(k, prefix) {
			ks = append(ks, append([]byte{}, k...))
		}
		return nil
	})
	for _, k := range ks {
		_ = c.db.Meta(bucketSelf).Delete(k)
	}
}
