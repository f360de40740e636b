package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
)

func pow(x, y float64) float64 { return math.Pow(x, y) }

// traffic is every home's byte counters at one moment.
type traffic struct {
	at     time.Time
	stream [][nKinds][2]int64 // home, kind, sent/received
	wire   []WireStats
	opened []int64
}

func (w *World) traffic() traffic {
	t := traffic{at: time.Now(), stream: make([][nKinds][2]int64, len(w.homes)), wire: make([]WireStats, len(w.homes)), opened: make([]int64, len(w.homes))}
	for i, h := range w.homes {
		t.opened[i] = h.opened.Load()
		for k := range nKinds {
			t.stream[i][k][0], t.stream[i][k][1] = h.Meter.Bytes(k)
		}
		t.wire[i] = w.nw.Wire(i)
	}
	return t
}

func (t traffic) sub(o traffic) traffic {
	d := traffic{at: t.at, stream: make([][nKinds][2]int64, len(t.stream)), wire: make([]WireStats, len(t.wire)), opened: make([]int64, len(t.opened))}
	for i := range t.stream {
		d.opened[i] = t.opened[i] - o.opened[i]
		for k := range nKinds {
			for j := range 2 {
				d.stream[i][k][j] = t.stream[i][k][j] - o.stream[i][k][j]
			}
		}
		a, b := t.wire[i], o.wire[i]
		d.wire[i] = WireStats{
			SentBytes: a.SentBytes - b.SentBytes, RecvBytes: a.RecvBytes - b.RecvBytes,
			SentPkts: a.SentPkts - b.SentPkts, RecvPkts: a.RecvPkts - b.RecvPkts, Dropped: a.Dropped - b.Dropped,
		}
	}
	return d
}

// perDay scales each home's bytes over d to a day.
func (t traffic) perDay(d time.Duration) *TrafficStats {
	scale := float64(24*time.Hour) / float64(d)
	var ts TrafficStats
	var kinds [nKinds][]float64
	var wire, pkts, opened []float64
	for i := range t.stream {
		opened = append(opened, float64(t.opened[i])*scale)
		for k := range nKinds {
			kinds[k] = append(kinds[k], float64(t.stream[i][k][0]+t.stream[i][k][1])*scale)
		}
		wire = append(wire, float64(t.wire[i].SentBytes+t.wire[i].RecvBytes)*scale)
		pkts = append(pkts, float64(t.wire[i].SentPkts+t.wire[i].RecvPkts)*scale)
	}
	for k := range nKinds {
		ts.Kind[k] = summarize(kinds[k])
	}
	ts.Wire, ts.Pkts, ts.Opened = summarize(wire), summarize(pkts), summarize(opened)
	return &ts
}

// lookup finds the providers of ch's key from looker the way discovery
// does (kad-dht's FindProvidersAsync under today's key of the looker's
// clock) and measures the first provider that is a home serving ch:
// virtual latency, the peers asked until then, and the hops: the
// referral depth of the first peer asked that held a record (peers from
// the looker's own table are depth 1, peers they named depth 2, ...; 0:
// the looker held one itself).
func (w *World) lookup(looker *Home, ch *Channel) (found bool, lat time.Duration, hops, asked int) {
	n := looker.Node()
	if n == nil {
		return false, 0, 0, 0
	}
	d := n.Discovery.DHT()
	key := discovery.ProvideKey(ch.Key.ID(), discovery.DayOf(time.Now().Add(time.Duration(looker.skew.Load()))))
	serving := map[peer.ID]bool{}
	for _, h := range w.servingHomes(ch, looker.I) {
		serving[w.homes[h].ID] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), discovery.DefaultLookupTimeout)
	defer cancel()
	ectx, events := routing.RegisterForQueryEvents(ctx)
	depth := map[peer.ID]int{}
	var order []peer.ID
	start := time.Now()
	provs := d.FindProvidersAsync(ectx, key, 0)
	askedBefore := -1
	for provs != nil || events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev.Type {
			case routing.SendingQuery:
				if depth[ev.ID] == 0 {
					depth[ev.ID] = 1
				}
				order = append(order, ev.ID)
			case routing.PeerResponse:
				for _, r := range ev.Responses {
					if _, ok := depth[r.ID]; !ok {
						depth[r.ID] = depth[ev.ID] + 1
					}
				}
			}
		case pi, ok := <-provs:
			if !ok {
				provs = nil
				continue
			}
			if !found && serving[pi.ID] {
				found, lat, askedBefore = true, time.Since(start), len(order)
				cancel()
			}
		}
	}
	if !found {
		return false, 0, 0, len(order)
	}
	hops = -1
	if w.holds(looker, key) {
		hops = 0
	}
	for _, p := range order[:askedBefore] {
		if hops == 0 {
			break
		}
		if h := w.homeOf(p); h != nil && w.holds(h, key) && (hops < 0 || depth[p] < hops) {
			hops = depth[p]
		}
	}
	return true, lat, max(hops, 0), askedBefore
}

// holds reports whether home h stores a provider record under key.
func (w *World) holds(h *Home, key cid.Cid) bool {
	n := h.Node()
	if n == nil {
		return false
	}
	ps, err := n.Discovery.DHT().ProviderStore().GetProviders(context.Background(), key.Hash())
	return err == nil && len(ps) > 0
}

func (w *World) homeOf(p peer.ID) *Home {
	for _, h := range w.homes {
		if h.ID == p {
			return h
		}
	}
	return nil
}

// measureLookups runs cfg.Lookups lookups, a few at a time, each from a
// random running home for a random channel it does not serve.
func (w *World) measureLookups(ph *Phase, rng *rand.Rand, count int) {
	type job struct {
		looker *Home
		ch     *Channel
	}
	var jobs []job
	for tries := 0; len(jobs) < count && tries < 100*count; tries++ {
		h := w.homes[rng.IntN(len(w.homes))]
		ch := w.g.Channels[rng.IntN(len(w.g.Channels))]
		if h.Node() == nil || h.skew.Load() != 0 || slices.Contains(ch.Homes, h.I) || len(w.servingHomes(ch, h.I)) == 0 {
			continue
		}
		jobs = append(jobs, job{h, ch})
	}
	var (
		mu  sync.Mutex
		res LookupStats
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
	)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			found, lat, hops, asked := w.lookup(j.looker, j.ch)
			mu.Lock()
			defer mu.Unlock()
			res.Tried++
			if found {
				res.Found++
				res.latency = append(res.latency, lat)
				res.hops = append(res.hops, hops)
				res.asked = append(res.asked, asked)
			}
		}()
	}
	wg.Wait()
	res.summarize()
	ph.Lookups = &res
}

// servingHomes lists the homes of ch, other than looker, that are on and
// whose clock is right: the providers a lookup for today's key must find
// (a home whose clock is a day off provides another day's key).
func (w *World) servingHomes(ch *Channel, looker int) []int {
	var out []int
	for _, h := range ch.Homes {
		if h != looker && w.homes[h].Node() != nil && w.homes[h].skew.Load() == 0 {
			out = append(out, h)
		}
	}
	return out
}

// measureTables checks every running home's routing table against the
// running homes: its size, the share of its entries that are running
// homes, and the share of the K (20) homes closest to it by XOR distance
// that it holds (what a lookup for a key near it depends on).
func (w *World) measureTables(ph *Phase) {
	var on []peer.ID
	for _, h := range w.homes {
		if h.Node() != nil {
			on = append(on, h.ID)
		}
	}
	alive := map[peer.ID]bool{}
	for _, p := range on {
		alive[p] = true
	}
	var ts TableStats
	for _, h := range w.homes {
		n := h.Node()
		if n == nil {
			continue
		}
		rt := n.Discovery.DHT().RoutingTable()
		ps := rt.ListPeers()
		live := 0
		for _, p := range ps {
			if alive[p] {
				live++
			}
		}
		others := slices.DeleteFunc(slices.Clone(on), func(p peer.ID) bool { return p == h.ID })
		closest := kb.SortClosestPeers(others, kb.ConvertPeerID(h.ID))
		closest = closest[:min(20, len(closest))]
		have := 0
		for _, p := range closest {
			if rt.Find(p) != "" {
				have++
			}
		}
		ts.size = append(ts.size, float64(len(ps)))
		if len(ps) > 0 {
			ts.live = append(ts.live, float64(live)/float64(len(ps)))
		}
		if len(closest) > 0 {
			ts.closest = append(ts.closest, float64(have)/float64(len(closest)))
		}
		ts.conns = append(ts.conns, float64(len(n.Host.Network().Conns())))
	}
	ts.summarize()
	ph.Tables = &ts
}

// recordSample bounds the homes whose provider store is read: reading one
// costs a store query per key of the network.
const recordSample = 50

// measureRecords counts the provider records stored by (at most
// recordSample) running homes, over every channel key of yesterday, today
// and tomorrow: the only keys there are.
func (w *World) measureRecords(ph *Phase) {
	today := discovery.DayOf(time.Now())
	var keys []cid.Cid
	for _, ch := range w.g.Channels {
		for _, d := range []discovery.Day{today - 1, today, today + 1} {
			keys = append(keys, discovery.ProvideKey(ch.Key.ID(), d))
		}
	}
	var rs RecordStats
	for _, h := range w.homes {
		n := h.Node()
		if n == nil {
			continue
		}
		if len(rs.perHome) == recordSample {
			break
		}
		ps := n.Discovery.DHT().ProviderStore()
		total := 0
		for _, k := range keys {
			got, err := ps.GetProviders(context.Background(), k.Hash())
			if err == nil {
				total += len(got)
			}
		}
		rs.perHome = append(rs.perHome, float64(total))
	}
	rs.summarize()
	ph.Records = &rs
}

// dhtSent is the DHT bytes every home has sent so far.
func (w *World) dhtSent() int64 {
	var sum int64
	for _, h := range w.homes {
		s, _ := h.Meter.Bytes(KindDHT)
		sum += s
	}
	return sum
}

// dhtBytes is the DHT bytes home h has sent and received so far.
func dhtBytes(h *Home) int64 {
	s, r := h.Meter.Bytes(KindDHT)
	return s + r
}

// walkCost is what one DHT operation of home h costs: walk runs it under
// ctx (registered for kad-dht's query events). own is h's DHT bytes sent
// and received meanwhile: its requests and the answers to them, each
// byte of the walk once, as the network carries it; what h answered
// other homes' walks in that time is in it too (a home's share of the
// background, under 1 KiB a second at 300 homes). net is every home's
// DHT bytes sent meanwhile, the walk's and everybody else's (what rpsim
// counted before, which at a few hundred homes is mostly the others');
// asked is the peers the walk sent requests to.
func (w *World) walkCost(h *Home, walk func(ctx context.Context) error) (own, net int64, asked int, err error) {
	ownBefore, netBefore := dhtBytes(h), w.dhtSent()
	ctx, cancel := context.WithTimeout(context.Background(), discovery.DefaultLookupTimeout)
	ectx, events := routing.RegisterForQueryEvents(ctx)
	n := countQueries(events)
	err = walk(ectx)
	cancel()
	asked = <-n
	return dhtBytes(h) - ownBefore, w.dhtSent() - netBefore, asked, err
}

// provideCost provides key from h as discovery does (a closest-peers walk
// and an ADD_PROVIDER to each of the closest) and says what it cost.
func (w *World) provideCost(h *Home, key cid.Cid) (own, net int64, asked int, err error) {
	return w.walkCost(h, func(ctx context.Context) error {
		return h.Node().Discovery.DHT().Provide(ctx, key, true)
	})
}

// measureCosts measures what one provide and one complete provider lookup
// cost: the DHT bytes the home that made it sent and received while it
// ran (walkCost), and the peers it asked. Each of n provides announces a
// key nobody provided before (as each day's new key is), from a random
// running home; each of n lookups asks for a served channel's key until
// the lookup completes (as the upkeep's does).
func (w *World) measureCosts(ph *Phase, rng *rand.Rand, n int) {
	var c CostStats
	var pb, pn, pr, lb, ln, lr []float64
	on := func() *Home {
		for {
			if h := w.homes[rng.IntN(len(w.homes))]; h.Node() != nil && h.skew.Load() == 0 {
				return h
			}
		}
	}
	for range n {
		h := on()
		var id channel.ID
		for i := range id {
			id[i] = byte(rng.IntN(256))
		}
		own, net, asked, err := w.provideCost(h, discovery.ProvideKey(id, discovery.DayOf(time.Now())))
		if err == nil {
			pb, pn, pr = append(pb, float64(own)), append(pn, float64(net)), append(pr, float64(asked))
		}
	}
	for range n {
		h := on()
		ch := w.g.Channels[rng.IntN(len(w.g.Channels))]
		key := discovery.ProvideKey(ch.Key.ID(), discovery.DayOf(time.Now()))
		own, net, asked, _ := w.walkCost(h, func(ctx context.Context) error {
			for range h.Node().Discovery.DHT().FindProvidersAsync(ctx, key, 0) {
			}
			return nil
		})
		lb, ln, lr = append(lb, float64(own)), append(ln, float64(net)), append(lr, float64(asked))
	}
	c.ProvideBytes, c.ProvideNetBytes, c.ProvideAsked = summarize(pb), summarize(pn), summarize(pr)
	c.LookupBytes, c.LookupNetBytes, c.LookupAsked = summarize(lb), summarize(ln), summarize(lr)
	ph.Costs = &c
}

// countQueries counts the peers a query sends requests to, until its
// events end.
func countQueries(events <-chan *routing.QueryEvent) <-chan int {
	out := make(chan int, 1)
	go func() {
		n := 0
		for ev := range events {
			if ev.Type == routing.SendingQuery {
				n++
			}
		}
		out <- n
	}()
	return out
}
