package discovery

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestDiversityFilterOn: with the default limits, peers that all come
// from one IP group (loopback) fill at most 3 routing-table slots.
func TestDiversityFilterOn(t *testing.T) {
	a := smallHost(t)
	t.Cleanup(func() { a.Close() })
	s, err := New(a, Config{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range 8 {
		h := smallHost(t)
		t.Cleanup(func() { h.Close() })
		o, err := New(h, fastConfig(info(a)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
	}
	eventually(t, "all 8 peers connected", func() bool { return len(a.Network().Peers()) >= 8 })
	time.Sleep(500 * time.Millisecond) // let identify finish for all of them
	if n := s.DHT().RoutingTable().Size(); n == 0 || n > DefaultMaxPeersPerIPGroup {
		t.Fatalf("routing table holds %d peers of one IP group, diversity limit is %d", n, DefaultMaxPeersPerIPGroup)
	}
}

// TestDHT50 runs 50 DHT nodes on loopback, 10 channels each served by 2
// nodes; every channel is looked up from 10 other nodes; then 30 % of the
// nodes are killed and the lookups repeated for the channels that still
// have a live provider. Success rate and latency (to the first provider)
// are logged: go test -run TestDHT50 -v ./node/discovery
func TestDHT50(t *testing.T) {
	if testing.Short() {
		t.Skip("50 hosts; skipped with -short")
	}
	const nodes, channels, providersPer, lookersPer = 50, 10, 2, 10
	svcs := make([]*Service, nodes)
	for i := range nodes {
		h := smallHost(t)
		t.Cleanup(func() { h.Close() })
		cfg := fastConfig()
		cfg.MaintainInterval = time.Hour // no upkeep noise: this measures lookups
		cfg.LookupTimeout = 30 * time.Second
		if i > 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, info(svcs[0].h))
			if i > 1 {
				cfg.Bootstrap = append(cfg.Bootstrap, info(svcs[rand.IntN(i)].h))
			}
		}
		s, err := New(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		svcs[i] = s
		t.Cleanup(func() { s.Close() })
	}
	eventually(t, "routing tables filled", func() bool {
		for _, s := range svcs {
			if s.DHT().RoutingTable().Size() < 5 {
				return false
			}
		}
		return true
	})
	chs := make([]channel.ID, channels)
	provs := make([][]int, channels)
	for c := range channels {
		key := newKey(t)
		chs[c] = key.ID()
		for _, i := range rand.Perm(nodes)[:providersPer] {
			st, err := IssueStatement(key, svcs[i].h.ID(), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if err := svcs[i].Serve(st); err != nil {
				t.Fatal(err)
			}
			provs[c] = append(provs[c], i)
		}
	}
	eventually(t, "every key provided", func() bool {
		for c := range channels {
			for _, i := range provs[c] {
				svcs[i].mu.Lock()
				n := len(svcs[i].served[chs[c]].provided)
				svcs[i].mu.Unlock()
				if n == 0 {
					return false
				}
			}
		}
		return true
	})
	alive := make([]bool, nodes)
	for i := range alive {
		alive[i] = true
	}
	round := func(label string) (ok, total int) {
		var lat []time.Duration
		for c := range channels {
			if !slices.ContainsFunc(provs[c], func(i int) bool { return alive[i] }) {
				continue
			}
			lookers := 0
			for _, i := range rand.Perm(nodes) {
				if lookers == lookersPer {
					break
				}
				if !alive[i] || slices.Contains(provs[c], i) {
					continue
				}
				lookers++
				total++
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				// Records of dead providers outlive them, so the latency
				// is to the first live provider, not the first record.
				var first time.Duration
				for pi := range svcs[i].DHT().FindProvidersAsync(ctx, ProvideKey(chs[c], DayOf(time.Now())), 0) {
					if first == 0 && slices.ContainsFunc(provs[c], func(j int) bool { return alive[j] && svcs[j].h.ID() == pi.ID }) {
						first = time.Since(start)
						cancel()
					}
				}
				cancel()
				if first > 0 {
					ok++
					lat = append(lat, first)
				}
			}
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			t.Logf("%s: found %d/%d (%.1f %%), latency median %v p99 %v", label, ok, total,
				100*float64(ok)/float64(total), lat[len(lat)/2], lat[(len(lat)*99)/100])
		}
		return ok, total
	}
	if ok, total := round("50 nodes"); ok != total {
		t.Fatalf("only %d of %d lookups found a provider", ok, total)
	}
	for _, i := range rand.Perm(nodes)[:nodes*3/10] {
		alive[i] = false
		svcs[i].Close()
		svcs[i].h.Close()
	}
	ok, total := round("after killing 30 %")
	if ok*10 < total*9 {
		t.Fatalf("after killing 30 %%: only %d of %d lookups found a live provider", ok, total)
	}
}
