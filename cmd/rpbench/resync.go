package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node/store"
)

// runResync: a client that shares some history with its node goes
// offline; a day of traffic (Missed messages spread over 24 h) arrives at
// the node; the client reconnects with a new connection and the same
// store. Reported: sync bytes both ways on the client's session (frames
// with their length prefixes) and time to catch up, against the bytes of
// the envelopes it missed.
func runResync(ctx context.Context, p Params) (Result, error) {
	var r Result
	dir, err := os.MkdirTemp("", "rpbench-resync-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	w, err := newWriter()
	if err != nil {
		return r, err
	}
	ch := w.key.ID()
	n, err := startNode(ctx, filepath.Join(dir, "node"), nodeOpts{}, p.Logger)
	if err != nil {
		return r, err
	}
	defer n.Close()
	n.Serve(ch)
	db, err := store.Open(filepath.Join(dir, "client.db"), store.Options{Logger: p.Logger})
	if err != nil {
		return r, err
	}
	defer db.Close()

	// Before: online, receiving the shared history as it is posted.
	c, err := newLite(dir, db, p.Logger)
	if err != nil {
		return r, err
	}
	var got atomic.Int64
	count := func(c *lite) {
		for range c.sub {
			got.Add(1)
		}
	}
	go count(c)
	if _, err := c.join(ctx, addrInfo(n.Host), ch); err != nil {
		c.close()
		return r, err
	}
	now := time.Now()
	for i := range p.Shared {
		e, err := w.seal(p.Body, now.Add(-48*time.Hour+time.Duration(i)*time.Second))
		if err != nil {
			c.close()
			return r, err
		}
		if _, err := n.Sync.Publish(ctx, e); err != nil {
			c.close()
			return r, err
		}
	}
	if err := until(ctx, func() bool { return got.Load() >= int64(p.Shared) }); err != nil {
		c.close()
		return r, fmt.Errorf("shared history: %w", err)
	}
	c.close() // offline; the store stays

	missedBytes := 0
	day := 24 * time.Hour
	for i := range p.Missed {
		at := now.Add(-day + time.Duration(i)*day/time.Duration(p.Missed))
		e, err := w.seal(p.Body, at)
		if err != nil {
			return r, err
		}
		if _, err := n.Sync.Publish(ctx, e); err != nil {
			return r, err
		}
		missedBytes += e.Size()
	}

	got.Store(0)
	c, err = newLite(dir, db, p.Logger)
	if err != nil {
		return r, err
	}
	defer c.close()
	go count(c)
	start := time.Now()
	if _, err := c.join(ctx, addrInfo(n.Host), ch); err != nil {
		return r, err
	}
	if err := until(ctx, func() bool { return got.Load() >= int64(p.Missed) }); err != nil {
		return r, fmt.Errorf("caught up %d of %d: %w", got.Load(), p.Missed, err)
	}
	took := time.Since(start)
	// Count the last reconcile rounds too: wait until the session is quiet.
	var last uint64
	for quiet := 0; quiet < 3 && ctx.Err() == nil; {
		time.Sleep(150 * time.Millisecond)
		st := c.svc.Stats(n.Host.ID())
		if t := st.BytesIn + st.BytesOut; t == last {
			quiet++
		} else {
			last, quiet = t, 0
		}
	}
	st := c.svc.Stats(n.Host.ID())
	r.add("shared history", float64(p.Shared), "msg")
	r.add("missed (a day of traffic)", float64(p.Missed), "msg")
	r.add("missed envelope bytes", float64(missedBytes), "B")
	r.add("sync bytes to catch up", float64(last), "B")
	r.add("bytes / missed bytes", float64(last)/float64(missedBytes), "x")
	r.add("bodies fetched", float64(st.FramesIn["body"]), "msg")
	r.add("reconcile frames", float64(st.FramesIn["reconcile"]+st.FramesOut["reconcile"]), "frames")
	r.add("time to catch up", ms(took), "ms")
	r.add("catch-up rate", float64(p.Missed)/took.Seconds(), "msg/s")
	r.target("sync bytes <= 1.2 x missed bytes", float64(last) <= 1.2*float64(missedBytes))
	r.Limit = "bytes: one fetch and one body frame per message plus reconcile rounds; time: the client's fsync per stored batch and MaxInFlight fetches"
	return r, nil
}
