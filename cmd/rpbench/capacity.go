package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

const (
	// clientsPerChannel: idle clients come in groups sharing a channel,
	// as friends do.
	clientsPerChannel = 10
	// joinConcurrency bounds registrations in flight.
	joinConcurrency = 32
)

// runCapacity ramps registered idle clients on one node in steps until
// the count asked for or the first failure, which names the limit hit.
func runCapacity(ctx context.Context, p Params) (Result, error) {
	var r Result
	dir, err := os.MkdirTemp("", "rpbench-capacity-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	child, err := startChild(ctx, filepath.Join(dir, "node"), childOpts{name: "capacity", capacity: p.Clients})
	if err != nil {
		return r, fmt.Errorf("node process: %w", err)
	}
	defer child.stop()
	pid := child.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond) // let the node settle before the base figure
	base, err := rssKiB(pid)
	if err != nil {
		return r, err
	}
	baseStats, err := child.askStats(ctx)
	if err != nil {
		return r, err
	}
	shared, err := store.Open(filepath.Join(dir, "clients.db"), store.Options{Logger: p.Logger})
	if err != nil {
		return r, err
	}
	defer shared.Close()

	var (
		mu      sync.Mutex
		clients []*lite
		limit   error
		lastRSS = base
	)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	var ch channel.ID
	joinStart := time.Now()
	for len(clients) < p.Clients && limit == nil && ctx.Err() == nil {
		step := min(p.ClientStep, p.Clients-len(clients))
		sem := make(chan struct{}, joinConcurrency)
		var wg sync.WaitGroup
		for i := range step {
			if (len(clients)+i)%clientsPerChannel == 0 {
				w, err := newWriter()
				if err != nil {
					return r, err
				}
				ch = w.key.ID()
			}
			myCh := ch
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				c, err := newLite(dir, shared, p.Logger)
				if err == nil {
					_, err = c.join(jctx, child.info, myCh)
					if err != nil {
						c.close()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if limit == nil {
						limit = err
					}
					return
				}
				clients = append(clients, c)
			}()
		}
		wg.Wait()
		if rss, err := rssKiB(pid); err == nil {
			lastRSS = rss
		}
	}
	joinTime := time.Since(joinStart)
	n := len(clients)
	r.add("registered idle clients", float64(n), "clients")
	r.add("registrations", float64(n)/joinTime.Seconds(), "reg/s")
	r.add("node RSS, no clients", base/1024, "MiB")
	r.add(fmt.Sprintf("node RSS, %d clients", n), lastRSS/1024, "MiB")
	perClient := 0.0
	if n > 0 {
		perClient = (lastRSS - base) / float64(n)
	}
	r.add("node RSS per client", perClient, "KiB")

	// Idle: nothing is sent; what the node burns is its own timers.
	time.Sleep(time.Second) // let the last sessions' hello and reconcile finish
	cpu0, start := child.cpu(), time.Now()
	select {
	case <-time.After(p.IdleFor):
	case <-ctx.Done():
	}
	r.add("node CPU while idle (10 ms ticks)", (child.cpu()-cpu0).Seconds()/time.Since(start).Seconds()*100, "% of a core")
	// Where the RSS per client goes, from the node's own runtime.
	if st, err := child.askStats(ctx); err == nil && n > 0 {
		r.add("node goroutines per client", float64(st.goroutines-baseStats.goroutines)/float64(n), "")
		r.add("node heap in use per client", (st.heapInuse-baseStats.heapInuse)/1024/float64(n), "KiB")
		r.add("node goroutine stacks per client", (st.stackUse-baseStats.stackUse)/1024/float64(n), "KiB")
	}
	child.stop() // before the clients go, for the heap profile
	r.target(">= 5000 idle registered clients at <= 100 KiB RSS each", n >= 5000 && perClient <= 100)
	switch {
	case limit != nil:
		r.Limit = "first failure at " + strconv.Itoa(n) + " clients: " + limit.Error()
	case ctx.Err() != nil:
		r.Limit = "scenario time bound reached"
	default:
		r.Limit = fmt.Sprintf("none hit: stopped at the %d clients asked for (node capacity, conns and FDs were configured for them)", p.Clients)
	}
	return r, nil
}
