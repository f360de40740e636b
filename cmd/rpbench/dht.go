package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/discovery"
)

// dhtProviders is how many super nodes serve the looked-up channel.
const dhtProviders = 3

// runDHT starts DHTNodes full nodes (host, store, sync, DHT) on loopback,
// each bootstrapped from the first and one random earlier node; three
// serve a channel under statements from its key; other nodes look the
// channel's super nodes up, cold (first lookup) and warm (again).
func runDHT(ctx context.Context, p Params) (Result, error) {
	var r Result
	dir, err := os.MkdirTemp("", "rpbench-dht-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	disc := func(c *node.Config) {
		c.Discovery = discovery.Config{
			MaintainInterval:         5 * time.Second,
			LookupTimeout:            10 * time.Second,
			MaxPeersPerIPGroup:       1000, // all on loopback: one IP group
			MaxPeersPerIPGroupPerCpl: 1000,
		}
	}
	nodes := make([]*node.Node, 0, p.DHTNodes)
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	start := time.Now()
	for i := range p.DHTNodes {
		var peers []string
		if i > 0 {
			peers = append(peers, nodes[0].Addrs()[0])
			if i > 1 {
				peers = append(peers, nodes[1+rand.IntN(i-1)].Addrs()[0])
			}
		}
		n, err := startNode(ctx, filepath.Join(dir, fmt.Sprint(i)), nodeOpts{peers: peers, dht: true, disc: disc}, p.Logger)
		if err != nil {
			return r, fmt.Errorf("node %d: %w", i, err)
		}
		nodes = append(nodes, n)
	}
	minTable := min(5, p.DHTNodes-1)
	if err := until(ctx, func() bool {
		for _, n := range nodes {
			if n.Discovery.DHT().RoutingTable().Size() < minTable {
				return false
			}
		}
		return true
	}); err != nil {
		return r, fmt.Errorf("routing tables: %w", err)
	}
	r.add("nodes", float64(len(nodes)), "nodes")
	r.add("network up", ms(time.Since(start)), "ms")

	w, err := newWriter()
	if err != nil {
		return r, err
	}
	ch := w.key.ID()
	provs := rand.Perm(len(nodes))[:dhtProviders]
	for _, i := range provs {
		st, err := discovery.IssueStatement(w.key, nodes[i].Host.ID(), time.Now().Add(24*time.Hour))
		if err != nil {
			return r, err
		}
		if err := nodes[i].Discovery.Serve(st); err != nil {
			return r, err
		}
	}
	var lookers []*node.Node
	for i, n := range nodes {
		if !slices.Contains(provs, i) {
			lookers = append(lookers, n)
		}
	}
	// Wait until the provides landed, as seen by one node not measured.
	probe, lookers := lookers[0], lookers[1:]
	if err := until(ctx, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		pis, _ := probe.Discovery.Providers(lctx, ch)
		return len(pis) >= dhtProviders
	}); err != nil {
		return r, fmt.Errorf("provides: %w", err)
	}
	lookers = lookers[:min(len(lookers), p.DHTLookups)]
	var cold, warm []time.Duration
	found, foundAll := 0, 0
	for _, n := range lookers {
		for pass := range 2 {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t0 := time.Now()
			pis, err := n.Discovery.Providers(lctx, ch)
			d := time.Since(t0)
			cancel()
			if pass == 0 {
				cold = append(cold, d)
				if err == nil && len(pis) > 0 {
					found++
				}
				if len(pis) >= dhtProviders {
					foundAll++
				}
			} else {
				warm = append(warm, d)
			}
		}
	}
	med := func(d []time.Duration) (time.Duration, time.Duration) {
		slices.Sort(d)
		return d[len(d)/2], d[len(d)-1]
	}
	cm, cx := med(cold)
	wm, wx := med(warm)
	r.add("lookups", float64(len(lookers)), "lookups")
	r.add("found >= 1 super node", float64(found)/float64(len(lookers)), "fraction")
	r.add(fmt.Sprintf("found all %d", dhtProviders), float64(foundAll)/float64(len(lookers)), "fraction")
	r.add("cold lookup median", ms(cm), "ms")
	r.add("cold lookup max", ms(cx), "ms")
	r.add("warm lookup median", ms(wm), "ms")
	r.add("warm lookup max", ms(wx), "ms")
	r.Limit = "round trips of the Kademlia walk (today's and yesterday's key, in parallel) and CPU of the nodes sharing the cores; every lookup runs to completion, not to the first provider"
	return r, nil
}
