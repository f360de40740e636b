package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// faultOff switches a share of the homes off (power cut) for OffFor while
// the others live on, then back on over ten minutes, as power comes back
// street by street.
func (w *World) faultOff(rep *Report, rng *rand.Rand) error {
	f := w.cfg.Faults
	k := max(1, int(f.OffShare*float64(len(w.homes))))
	off := rng.Perm(len(w.homes))[:k]
	slices.Sort(off)
	ph, before := w.begin(rep, "off", f.OffFor)
	ph.Affected = off
	w.progress("switching %d homes off for %v", k, f.OffFor)
	if err := w.each(off, w.stop); err != nil {
		return err
	}
	// Lookups half way: records of the homes that are off linger on the
	// DHT (6 h), so lookers meet dead providers.
	time.Sleep(f.OffFor / 2)
	w.measureLookups(ph, rng, w.cfg.Lookups)
	time.Sleep(f.OffFor - f.OffFor/2)
	w.end(ph, before)
	w.measureTables(ph)
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, i := range off {
		at := time.Duration(rng.Int64N(int64(10 * time.Minute)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(at)
			if err := w.switchOn(w.homes[i]); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ph.Healed = time.Now()
	w.progress("homes back on after %v", time.Since(start).Round(time.Second))
	w.window(rep, "after-off", f.Settle)
	return first
}

// faultSplit cuts the network in two by region (the first half of the
// regions against the rest) for SplitFor, then heals it.
func (w *World) faultSplit(rep *Report) {
	f := w.cfg.Faults
	group := make([]int, len(w.homes))
	var side []int
	for i := range w.homes {
		if w.nw.Link(i).Region < max(1, w.cfg.Regions/2) {
			group[i] = 1
			side = append(side, i)
		}
	}
	w.nw.Split(group)
	w.progress("network split: %d homes against %d for %v", len(side), len(w.homes)-len(side), f.SplitFor)
	ph := w.window(rep, "split", f.SplitFor)
	ph.Affected = side
	w.nw.Split(nil)
	ph.Healed = time.Now()
	w.progress("split healed")
	w.window(rep, "after-split", f.Settle)
}

// faultChurn runs ChurnFor of home-box life: every home independently,
// every ChurnEvery on average, has its router reboot (seven in ten: the
// network is gone for 1–5 minutes, the node runs on) or loses power (the
// node is off for 5–60 minutes). At the end every home is on.
func (w *World) faultChurn(rep *Report, rng *rand.Rand) error {
	f := w.cfg.Faults
	end := time.Now().Add(f.ChurnFor)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
		events int
	)
	for _, h := range w.homes {
		r := rand.New(rand.NewPCG(rng.Uint64(), 2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				wait := time.Duration(r.ExpFloat64() * float64(f.ChurnEvery))
				if time.Now().Add(wait).After(end) {
					return
				}
				time.Sleep(wait)
				mu.Lock()
				events++
				mu.Unlock()
				var err error
				if r.Float64() < 0.7 {
					w.nw.SetOff(h.I, true)
					time.Sleep(time.Minute + time.Duration(r.Int64N(int64(4*time.Minute))))
					w.nw.SetOff(h.I, false)
				} else {
					if err = w.stop(h); err == nil {
						time.Sleep(5*time.Minute + time.Duration(r.Int64N(int64(55*time.Minute))))
						err = w.switchOn(h)
					}
				}
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	ph := w.window(rep, "churn", f.ChurnFor)
	wg.Wait()
	ph.Healed = time.Now()
	ph.Events = events
	w.measureLookups(ph, rng, w.cfg.Lookups)
	w.progress("churn over: %d outages", events)
	w.window(rep, "after-churn", f.Settle)
	return first
}

// faultSkew puts the clocks of Skewed homes a day off, half of them
// ahead and half behind, for SkewFor while everyone posts (a box whose
// clock was never synchronised, or synchronised from a wrong source),
// then puts them right, as NTP does at last, and lets the network
// settle. The homes' clocks jump both times; the nodes keep running.
// Posts of the phase a home with a wrong clock still lacks at the end
// are counted apart (DeliveryStats.SkewPosts); any other post missing
// anywhere is lost.
func (w *World) faultSkew(rep *Report, rng *rand.Rand) {
	f := w.cfg.Faults
	skewed := rng.Perm(len(w.homes))[:min(f.Skewed, len(w.homes))]
	slices.Sort(skewed)
	for k, i := range skewed {
		d := 24 * time.Hour
		if k%2 == 1 {
			d = -d
		}
		w.homes[i].skew.Store(int64(d))
	}
	rep.Skewed = skewed
	w.progress("clocks a day off on homes %v for %v", skewed, f.SkewFor)
	ph, before := w.begin(rep, "skew", f.SkewFor)
	ph.Affected = skewed
	time.Sleep(f.SkewFor / 2)
	w.measureLookups(ph, rng, w.cfg.Lookups)
	time.Sleep(f.SkewFor - f.SkewFor/2)
	w.end(ph, before)
	for _, i := range skewed {
		w.homes[i].skew.Store(0)
	}
	ph.Healed = time.Now()
	w.progress("clocks put right on homes %v", skewed)
	w.window(rep, "after-skew", f.Settle)
}

// each runs fn on the listed homes concurrently and returns the first
// error.
func (w *World) each(is []int, fn func(*Home) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, i := range is {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(w.homes[i]); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// checkDelivery looks every acknowledged post up in the store of every
// home of its channel (all homes are on by now) and summarizes delivery
// per phase: complete, lost, and the time from acknowledgement to the
// last home; for fault phases also the time from healing to the last
// home.
func (w *World) checkDelivery(rep *Report) error {
	end := time.Now()
	posts := w.track.snapshot()
	for _, h := range w.homes {
		n := h.Node()
		if n == nil {
			return fmt.Errorf("sim: home %d is off at the end", h.I)
		}
	}
	type acc struct {
		d           *DeliveryStats
		all, healed []float64
		byHomes     map[int][]float64
	}
	by := map[string]*acc{}
	for _, ph := range rep.Phases {
		by[ph.Name] = &acc{d: &DeliveryStats{}, byHomes: map[int][]float64{}}
		ph.Delivery = by[ph.Name].d
	}
	phase := map[string]*Phase{}
	for _, ph := range rep.Phases {
		phase[ph.Name] = ph
	}
	for _, p := range posts {
		a := by[p.phase]
		if a == nil {
			continue
		}
		a.d.Posts++
		lost, skewMiss := false, false
		last := p.acked
		for _, hi := range p.ch.Homes {
			at, ok := w.track.arrival(p, hi)
			if !ok {
				has, err := w.homes[hi].Node().Store.Has(p.id)
				if err != nil {
					return fmt.Errorf("sim: home %d store: %w", hi, err)
				}
				if !has {
					if p.phase == "skew" && slices.Contains(rep.Skewed, hi) {
						// Refused while its clock was off; see SkewMissing.
						a.d.SkewMissing++
						skewMiss = true
					} else {
						lost = true
						a.d.Missing = append(a.d.Missing, Missing{Home: hi, Channel: p.ch.N, Phase: p.phase})
					}
					continue
				}
				w.track.noteStored(p, hi, end)
				at = end
			}
			last = maxTime(last, at)
		}
		if lost {
			a.d.Lost++
			continue
		}
		if skewMiss {
			a.d.SkewPosts++
			continue
		}
		a.d.Complete++
		lat := last.Sub(p.acked).Seconds()
		a.all = append(a.all, lat)
		a.byHomes[len(p.ch.Homes)] = append(a.byHomes[len(p.ch.Homes)], lat)
		if ph := phase[p.phase]; ph != nil && !ph.Healed.IsZero() {
			a.healed = append(a.healed, max(0, last.Sub(ph.Healed).Seconds()))
		}
	}
	for _, a := range by {
		a.d.All = summarize(a.all)
		a.d.AfterHealing = summarize(a.healed)
		a.d.ByHomes = map[int]Dist{}
		for k, xs := range a.byHomes {
			a.d.ByHomes[k] = summarize(xs)
		}
		if len(a.d.Missing) > 20 {
			a.d.Missing = a.d.Missing[:20]
		}
	}
	rep.NotPosted, rep.Refused, rep.SubscriptionMissed = w.notPosted.Load(), w.refused.Load(), w.track.missed.Load()
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
