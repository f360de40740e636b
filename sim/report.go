package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Report is what a run measured. Byte figures per day are the phase's
// counts scaled to 24 hours.
type Report struct {
	Config   Config `json:"config"`
	Homes    int    `json:"homes"`
	People   int    `json:"people"`
	Channels int    `json:"channels"`
	// Wall is the real time the run took, CPU the process's CPU time
	// (user and system) over it, Virtual the simulated time.
	Wall    time.Duration `json:"wall_ns"`
	CPU     time.Duration `json:"cpu_ns"`
	Virtual time.Duration `json:"virtual_ns"`
	Phases  []*Phase      `json:"phases"`
	// Skewed lists the homes whose clock was a day off (ahead for the
	// first, then alternating).
	Skewed []int `json:"skewed,omitempty"`
	// NotPosted: posts not made because the author's home was off.
	// Refused: posts the author's home refused (not acknowledged).
	// SubscriptionMissed: arrivals found in a store at the end, not
	// seen when they happened (their time is counted as the end).
	NotPosted          int64 `json:"not_posted"`
	Refused            int64 `json:"refused"`
	SubscriptionMissed int64 `json:"subscription_missed"`
	// HeapBytes and Goroutines of the simulator at the end of the steady
	// phase.
	HeapBytes  uint64 `json:"heap_bytes"`
	Goroutines int    `json:"goroutines"`
	// JoinWall and JoinCPU are the real and CPU time until every home
	// was up; JoinHeapBytes and JoinGoroutines the simulator's then
	// (every new connection still within its grace period).
	JoinWall       time.Duration `json:"join_wall_ns,omitempty"`
	JoinCPU        time.Duration `json:"join_cpu_ns,omitempty"`
	JoinHeapBytes  uint64        `json:"join_heap_bytes,omitempty"`
	JoinGoroutines int           `json:"join_goroutines,omitempty"`
}

// Phase is one stretch of the run and what was measured in it.
type Phase struct {
	Name   string        `json:"name"`
	Start  time.Time     `json:"start"`
	Length time.Duration `json:"length_ns"`
	// Affected lists the homes switched off, or one side of a split.
	Affected []int `json:"affected,omitempty"`
	// Healed is when the fault ended (the last home back on, the split
	// healed, the last outage over).
	Healed time.Time `json:"healed,omitzero"`
	// Events counts the outages of a churn phase.
	Events   int            `json:"events,omitempty"`
	PerDay   *TrafficStats  `json:"per_day,omitempty"`
	Lookups  *LookupStats   `json:"lookups,omitempty"`
	Tables   *TableStats    `json:"tables,omitempty"`
	Records  *RecordStats   `json:"records,omitempty"`
	Costs    *CostStats     `json:"costs,omitempty"`
	Delivery *DeliveryStats `json:"delivery,omitempty"`
}

// Dist is a distribution's summary.
type Dist struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

func summarize(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(f float64) float64 { return s[min(len(s)-1, int(f*float64(len(s))))] }
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), Mean: sum / float64(len(s)), Median: q(0.5), P90: q(0.9), P99: q(0.99), Max: s[len(s)-1]}
}

func durs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func ints(xs []int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// LookupStats: provider lookups from homes that do not serve the channel.
type LookupStats struct {
	Tried, Found int
	Latency      Dist // seconds, to the first serving home found
	Hops         Dist
	Asked        Dist // peers asked until then

	latency []time.Duration
	hops    []int
	asked   []int
}

func (l *LookupStats) summarize() {
	l.Latency, l.Hops, l.Asked = summarize(durs(l.latency)), summarize(ints(l.hops)), summarize(ints(l.asked))
}

// TableStats: every running home's routing table.
type TableStats struct {
	Size    Dist // peers in the table
	Live    Dist // share of them that are running homes
	Closest Dist // share of the 20 XOR-closest running homes held
	Conns   Dist // open connections

	size, live, closest, conns []float64
}

func (t *TableStats) summarize() {
	t.Size, t.Live, t.Closest, t.Conns = summarize(t.size), summarize(t.live), summarize(t.closest), summarize(t.conns)
}

// RecordStats: provider records stored per home.
type RecordStats struct {
	PerHome Dist
	perHome []float64
}

func (r *RecordStats) summarize() { r.PerHome = summarize(r.perHome) }

// CostStats: what one provide (a walk to the closest peers and the
// records stored at them) and one complete provider lookup cost. Bytes:
// the DHT bytes the home that made it sent and received meanwhile (its
// walk; World.walkCost). NetBytes: every home's DHT bytes sent meanwhile,
// the others' traffic included (what Bytes meant in the JSON of runs
// before this field existed). Asked: the peers it sent requests to.
type CostStats struct {
	ProvideBytes, ProvideAsked Dist
	LookupBytes, LookupAsked   Dist
	ProvideNetBytes            Dist `json:",omitzero"`
	LookupNetBytes             Dist `json:",omitzero"`
}

// TrafficStats: bytes per home per day by kind (sent + received).
type TrafficStats struct {
	Kind [nKinds]Dist
	Wire Dist // all bytes on the home's link, both ways
	Pkts Dist
	// Opened: connections the home opened or accepted.
	Opened Dist
}

// DeliveryStats: posts acknowledged in a phase and how they reached the
// homes of their channels.
type DeliveryStats struct {
	Posts    int
	Complete int // reached every home of the channel
	// Lost: not in the store of some home of the channel, one whose clock
	// was right, at the end.
	Lost int
	// SkewPosts are posts of the skew phase missing at the end only at
	// a home whose clock was a day off then (put right at the phase's
	// end); SkewMissing counts the (post, home) pairs.
	SkewPosts, SkewMissing int
	// ByHomes is the time from acknowledgement to the last home of the
	// channel, by the number of homes the channel spans.
	ByHomes map[int]Dist
	All     Dist
	// AfterHealing is, for a fault phase, the time from healing to the
	// last home (0 for posts that were complete before).
	AfterHealing Dist
	// Missing lists (the first 20) posts not stored where they belong.
	Missing []Missing `json:",omitempty"`
}

// Missing is a post a home of its channel does not have.
type Missing struct {
	Home, Channel int
	Phase         string
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%d homes, %d people, %d channels: virtual %v in wall %v (CPU %v); simulator heap %d MiB, %d goroutines\n",
		r.Homes, r.People, r.Channels, r.Virtual.Round(time.Second), r.Wall.Round(time.Second), r.CPU.Round(time.Second), r.HeapBytes>>20, r.Goroutines)
	if r.JoinWall > 0 {
		fmt.Fprintf(w, "every home up after wall %v (CPU %v); simulator heap then %d MiB, %d goroutines\n",
			r.JoinWall.Round(time.Second), r.JoinCPU.Round(time.Second), r.JoinHeapBytes>>20, r.JoinGoroutines)
	}
	fmt.Fprintf(w, "posts not made (home off) %d, refused by their home %d; arrivals seen only in the store at the end %d\n",
		r.NotPosted, r.Refused, r.SubscriptionMissed)
	if len(r.Skewed) > 0 {
		fmt.Fprintf(w, "homes with a clock a day off: %v\n", r.Skewed)
	}
	for _, ph := range r.Phases {
		fmt.Fprintf(w, "phase %s (%v)", ph.Name, ph.Length.Round(time.Second))
		if len(ph.Affected) > 0 {
			fmt.Fprintf(w, ", %d homes affected", len(ph.Affected))
		}
		if ph.Events > 0 {
			fmt.Fprintf(w, ", %d outages", ph.Events)
		}
		fmt.Fprintln(w)
		if l := ph.Lookups; l != nil {
			fmt.Fprintf(w, "  lookups: %d/%d found a serving home; latency median %.3f s, p99 %.3f s; hops median %.0f, p99 %.0f, max %.0f; peers asked median %.0f, p99 %.0f\n",
				l.Found, l.Tried, l.Latency.Median, l.Latency.P99, l.Hops.Median, l.Hops.P99, l.Hops.Max, l.Asked.Median, l.Asked.P99)
		}
		if t := ph.Tables; t != nil {
			fmt.Fprintf(w, "  routing tables: size median %.0f (max %.0f); entries running %.0f %%; of the 20 closest homes held median %.0f %% (mean %.0f %%); connections median %.0f, max %.0f\n",
				t.Size.Median, t.Size.Max, 100*t.Live.Mean, 100*t.Closest.Median, 100*t.Closest.Mean, t.Conns.Median, t.Conns.Max)
		}
		if c := ph.Costs; c != nil {
			fmt.Fprintf(w, "  one provide: %s sent and received by the provider (median; all homes sent %s meanwhile), %.0f peers asked; one complete lookup: %s (%s), %.0f peers asked\n",
				bytesStr(c.ProvideBytes.Median), bytesStr(c.ProvideNetBytes.Median), c.ProvideAsked.Median,
				bytesStr(c.LookupBytes.Median), bytesStr(c.LookupNetBytes.Median), c.LookupAsked.Median)
		}
		if rs := ph.Records; rs != nil {
			fmt.Fprintf(w, "  provider records stored per home: median %.0f, p99 %.0f, max %.0f\n", rs.PerHome.Median, rs.PerHome.P99, rs.PerHome.Max)
		}
		if t := ph.PerDay; t != nil {
			fmt.Fprintf(w, "  per home per day (sent+received), median / p99:")
			for k := range nKinds {
				fmt.Fprintf(w, " %s %s / %s;", Kind(k), bytesStr(t.Kind[k].Median), bytesStr(t.Kind[k].P99))
			}
			fmt.Fprintf(w, " on the wire %s / %s (%.0f packets); connections opened %.0f / %.0f\n",
				bytesStr(t.Wire.Median), bytesStr(t.Wire.P99), t.Pkts.Median, t.Opened.Median, t.Opened.P99)
		}
		if d := ph.Delivery; d != nil && d.Posts > 0 {
			fmt.Fprintf(w, "  delivery: %d posts acknowledged, %d reached every home of their channel, %d lost; to the last home median %.3f s, p99 %.3f s, max %.1f s\n",
				d.Posts, d.Complete, d.Lost, d.All.Median, d.All.P99, d.All.Max)
			if d.SkewMissing > 0 {
				fmt.Fprintf(w, "  %d posts missing only at a home whose clock was a day off (%d post-home pairs)\n", d.SkewPosts, d.SkewMissing)
			}
			if d.AfterHealing.N > 0 {
				fmt.Fprintf(w, "  after healing: the last home had them %.1f s later (p99 %.1f s, max %.1f s)\n",
					d.AfterHealing.Median, d.AfterHealing.P99, d.AfterHealing.Max)
			}
			ks := slices.Sorted(maps.Keys(d.ByHomes))
			for _, k := range ks {
				if k < 2 {
					continue // a household's own channel: no network involved
				}
				b := d.ByHomes[k]
				fmt.Fprintf(w, "    channels on %d homes: %d posts, median %.3f s, p99 %.3f s\n", k, b.N, b.Median, b.P99)
			}
			for _, m := range d.Missing {
				fmt.Fprintf(w, "    missing: home %d, channel %d\n", m.Home, m.Channel)
			}
		}
	}
}

func bytesStr(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
