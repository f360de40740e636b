package attack

import (
	"context"
	"fmt"
	"slices"
	"strconv"
)

// SuiteConfig says what RunSuite attacks and how hard.
type SuiteConfig struct {
	Binary string // homenode
	Dir    string // scratch directory
	Scale  Scale
	// Only, if set, names the attacks to run.
	Only []string
	// Cgroup: put the node under a memory cgroup where possible.
	Cgroup bool
	Logf   func(format string, args ...any)
	// OnReport is called with each report as it is made.
	OnReport func(*Report)
}

// OwnedAttacks run against a node with a configured owner (the friend),
// in this order, then the check that every acknowledged message was kept
// (Kept), then OwnerOverride; UnpairedAttacks run against a node waiting
// for pairing.
var (
	OwnedAttacks    = []Attack{SyncWants, SilentSync, KadFlood, AuthzFlood, HandOver, RegFlood, LogFlood, BackupBlock, DiskFill}
	UnpairedAttacks = []Attack{DNSRebind, PairingHeld}
)

// Kept is the check, after the attacks on the owned node, that every
// message the node acknowledged to the friend reaches a fresh member's
// device from it.
const Kept = "kept-acked"

// RunSuite starts the nodes, runs the attacks and returns their reports.
func RunSuite(ctx context.Context, cfg SuiteConfig) ([]*Report, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	want := func(name string) bool { return len(cfg.Only) == 0 || slices.Contains(cfg.Only, name) }
	var out []*Report
	emit := func(r *Report) {
		out = append(out, r)
		if cfg.OnReport != nil {
			cfg.OnReport(r)
		}
	}
	friend, err := NewFriend(cfg.Dir, "owner")
	if err != nil {
		return nil, err
	}
	defer friend.Close()
	// The store's total quota is half of what the friend of a friend
	// sends, so that the fill reaches it; a registrant may fill half of
	// it, and a quarter is kept for the owner.
	quota := max(cfg.Scale.FillMessages*(48<<10)/2, 4<<20)
	t, err := StartTarget(ctx, TargetConfig{Binary: cfg.Binary, Dir: cfg.Dir + "/owned", Owner: friend.C.ID(),
		Cgroup: cfg.Cgroup, Set: []string{"max_total_bytes=" + strconv.Itoa(quota),
			"max_registrant_bytes=" + strconv.Itoa(quota/2), "owner_reserved_bytes=" + strconv.Itoa(quota/4)}})
	if err != nil {
		return nil, err
	}
	env := &Env{T: t, Friend: friend, Dir: cfg.Dir, Scale: cfg.Scale, Logf: logf}
	defer func() { env.T.Stop() }()
	logf("owned node %s (%s)", t.Addr, t.Note)
	if err := friend.Join(ctx, t.Addr); err != nil {
		return nil, err
	}
	if _, err := friend.Send(ctx, "before the attacks"); err != nil {
		return nil, fmt.Errorf("attack: the friend's first send: %w", err)
	}
	for _, a := range OwnedAttacks {
		if !want(a.Name) {
			continue
		}
		logf("attack %s (item %s)", a.Name, a.Item)
		r := Run(ctx, env, a)
		emit(r)
		if !env.T.Alive() {
			return out, nil
		}
	}
	if want(Kept) {
		r := &Report{Attack: Kept, Item: "all"}
		rd, err := NewReader(ctx, cfg.Dir, "reader", friend, env.T.Addr)
		if err != nil {
			r.Fail("reader: %v", err)
		} else {
			acked := friend.Acked()
			missing := rd.Missing(ctx, acked)
			rd.C.Close()
			r.Did = fmt.Sprintf("a fresh member's device fetched the channel from the node: %d messages acknowledged to the friend", len(acked))
			r.Note("%d of %d acknowledged messages reached it", len(acked)-len(missing), len(acked))
			if len(missing) > 0 {
				r.Fail("%d acknowledged messages are not on the node, first %s", len(missing), missing[0])
			}
		}
		emit(r)
	}
	// Last: if it succeeds, the friend is no longer the owner.
	if want(OwnerOverride.Name) {
		logf("attack %s (item %s)", OwnerOverride.Name, OwnerOverride.Item)
		emit(Run(ctx, env, OwnerOverride))
	}
	env.T.Stop()

	var un []Attack
	for _, a := range UnpairedAttacks {
		if want(a.Name) {
			un = append(un, a)
		}
	}
	if len(un) == 0 {
		return out, nil
	}
	t2, err := StartTarget(ctx, TargetConfig{Binary: cfg.Binary, Dir: cfg.Dir + "/unpaired", Cgroup: cfg.Cgroup})
	if err != nil {
		return out, err
	}
	defer t2.Stop()
	env2 := &Env{T: t2, Dir: cfg.Dir, Scale: cfg.Scale, Logf: logf}
	for _, a := range un {
		logf("attack %s (item %s)", a.Name, a.Item)
		emit(Run(ctx, env2, a))
	}
	return out, nil
}
