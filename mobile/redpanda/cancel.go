package redpanda

import (
	"context"
	"time"
)

// Cancel cancels the long calls it is given: every call in flight with
// it ends with CodeCancelled, and so does every later call given it (like
// a Go context). Make one per screen or per operation; Cancel may be
// called from any thread, any number of times. A nil Cancel (null in
// Java, nil in Swift) is allowed wherever one is taken.
type Cancel struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewCancel makes a Cancel that is not cancelled yet.
func NewCancel() *Cancel {
	ctx, cancel := context.WithCancel(context.Background())
	return &Cancel{ctx: ctx, cancel: cancel}
}

// Cancel cancels the calls given this Cancel.
func (c *Cancel) Cancel() {
	if c != nil && c.cancel != nil {
		c.cancel()
	}
}

// IsCancelled reports whether Cancel was called.
func (c *Cancel) IsCancelled() bool { return c != nil && c.ctx != nil && c.ctx.Err() != nil }

// callContext is the context of one long call: it ends with parent (the
// client's epoch: Pause and Close end it), with cancel, or after timeoutMs
// (def when timeoutMs <= 0).
func callContext(parent context.Context, timeoutMs int64, def time.Duration, cancel *Cancel) (context.Context, context.CancelFunc) {
	d := def
	if timeoutMs > 0 {
		d = time.Duration(timeoutMs) * time.Millisecond
	}
	ctx, stop := context.WithTimeout(parent, d)
	if cancel == nil || cancel.ctx == nil {
		return ctx, stop
	}
	unhook := context.AfterFunc(cancel.ctx, stop)
	return ctx, func() { unhook(); stop() }
}
