package attack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scale is how hard the attacks push.
type Scale struct {
	Name string
	// Hold is how long each attack lasts (or holds what it opened).
	Hold time.Duration
	// WantPeers attackers each declare WantsPerPeer channels (item 1).
	WantPeers, WantsPerPeer int
	// SilentStreams sync streams never say Hello (item 1).
	SilentStreams int
	// KadMessages ADD_PROVIDER messages on one stream (item 2).
	KadMessages int
	// HandOver statements from one registered user (item 5).
	HandOver int
	// AuthzStatements from one stranger (item 9).
	AuthzStatements int
	// RegPeers peers send RegPerPeer registrations each (items 7, 10).
	RegPeers, RegPerPeer int
	// PairHolders pairing sessions held open (item 8).
	PairHolders int
	// FillMessages 48 KiB messages from a friend of a friend (item 6).
	FillMessages int
	// BackupFetchers strangers fetch the backup (item 11).
	BackupFetchers int
}

// Small is what make test runs: every class, bounded.
var Small = Scale{Name: "small", Hold: 6 * time.Second,
	WantPeers: 24, WantsPerPeer: 8192, SilentStreams: 64, KadMessages: 100_000,
	HandOver: 640, AuthzStatements: 6_400, RegPeers: 60, RegPerPeer: 5,
	PairHolders: 6, FillMessages: 400, BackupFetchers: 6}

// Large is what make attack runs: the sizes of the report in issue 19.
var Large = Scale{Name: "large", Hold: 20 * time.Second,
	WantPeers: 48, WantsPerPeer: 65536, SilentStreams: 256, KadMessages: 1_000_000,
	HandOver: 3_008, AuthzStatements: 400_000, RegPeers: 400, RegPerPeer: 5,
	PairHolders: 8, FillMessages: 1500, BackupFetchers: 20}

// Report is one attack's outcome.
type Report struct {
	Attack   string
	Item     string // the item of issue 19
	Did      string // what the attacker did
	BaseRSS  int64
	PeakRSS  int64
	Lat      []time.Duration // the friend's sends during the attack
	Failed   []string        // the friend's sends that failed
	HeapPre  int64
	HeapPost int64
	LogLines int      // lines the node logged during the attack
	Findings []string // what the attack observed
	Problems []string // what the node must not have let happen
}

// Fail records a problem.
func (r *Report) Fail(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Note records a finding.
func (r *Report) Note(format string, args ...any) {
	r.Findings = append(r.Findings, fmt.Sprintf(format, args...))
}

// P50 and Max of the friend's send latencies.
func (r *Report) P50() time.Duration { return pct(r.Lat, 50) }
func (r *Report) Max() time.Duration { return pct(r.Lat, 100) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// String is one report as the summary table's row and its notes.
func (r *Report) String() string {
	var b strings.Builder
	if r.Attack == Kept {
		fmt.Fprintf(&b, "%-14s %-5s\n", r.Attack, r.Item)
	} else {
		fmt.Fprintf(&b, "%-14s %-5s peak RSS %8s (base %s)  friend send p50 %6s max %6s (%d sends, %d failed)  heap %s -> %s  log lines %d\n",
			r.Attack, r.Item, mib(r.PeakRSS), mib(r.BaseRSS), r.P50().Round(time.Millisecond), r.Max().Round(time.Millisecond),
			len(r.Lat), len(r.Failed), mib(r.HeapPre), mib(r.HeapPost), r.LogLines)
	}
	fmt.Fprintf(&b, "    did: %s\n", r.Did)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "    saw: %s\n", f)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "    PROBLEM: %s\n", p)
	}
	return b.String()
}

// Bounds the node must stay within during an attack. They are liveness
// bounds, generous for a loaded 2-core CI machine, not benchmarks.
const (
	// SendBound is the longest a friend's send may take.
	SendBound = 15 * time.Second
	// HeapSlack is how far above its level before the attack the heap may
	// stay once the attack is over.
	HeapSlack = 48 << 20
	// recoverWait bounds the wait for the heap to come back (the Go
	// runtime forces a collection every 2 minutes at the latest).
	recoverWait = 150 * time.Second
)

// Env is what an attack works with.
type Env struct {
	T      *Target
	Friend *Friend
	Dir    string
	Scale  Scale
	Logf   func(format string, args ...any)
	// RecoverWait overrides recoverWait (0: the default).
	RecoverWait time.Duration

	// The friend's sends before a restart within the attack.
	lat    []time.Duration
	failed []string
}

// Restart restarts the node from its data directory, with the friend's
// sends paused meanwhile (a node that is down cannot acknowledge), and
// waits until the friend's next send is acknowledged again.
func (env *Env) Restart(ctx context.Context) error {
	if env.Friend != nil {
		lat, failed := env.Friend.StopSending()
		env.lat, env.failed = append(env.lat, lat...), append(env.failed, failed...)
	}
	t, err := env.T.Restart(ctx)
	if err != nil {
		return err
	}
	env.T = t
	if env.Friend == nil {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := env.Friend.Send(ctx, "after the restart"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the friend's sends fail after the restart: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	env.Friend.StartSending(ctx, 250*time.Millisecond)
	return nil
}

// Attack is one attack class.
type Attack struct {
	Name string
	Item string
	Run  func(ctx context.Context, env *Env, r *Report)
}

// Run runs a while the friend sends every 250 ms, and checks what every
// attack must leave intact: the node alive under its memory budget, the
// friend's sends acknowledged within SendBound, the heap back afterwards.
func Run(ctx context.Context, env *Env, a Attack) *Report {
	r := &Report{Attack: a.Name, Item: a.Item}
	t := env.T
	env0 := t
	r.HeapPre, _ = t.HeapInuse(ctx)
	r.BaseRSS = t.ResetPeak()
	logs := t.LogLines()
	env.lat, env.failed = nil, nil
	if env.Friend != nil {
		env.Friend.StartSending(ctx, 250*time.Millisecond)
	}
	a.Run(ctx, env, r)
	t = env.T // an attack may have restarted the node
	if env.Friend != nil {
		lat, failed := env.Friend.StopSending()
		r.Lat, r.Failed = append(env.lat, lat...), append(env.failed, failed...)
	}
	r.PeakRSS = t.Peak()
	r.LogLines = t.LogLines() - logs
	if t != env0 {
		r.LogLines = -1 // restarted: not comparable
	}
	if !t.Alive() {
		r.Fail("%s", t.Died())
		return r
	}
	if r.PeakRSS >= memBudgetRSS {
		r.Fail("peak RSS %s reached the unit's MemoryMax %s", mib(r.PeakRSS), mib(memBudgetRSS))
	}
	if len(r.Failed) > 0 {
		r.Fail("%d of the friend's sends failed during the attack, first: %s", len(r.Failed), r.Failed[0])
	}
	if m := r.Max(); m > SendBound {
		r.Fail("a friend's send took %s (bound %s)", m.Round(time.Millisecond), SendBound)
	}
	wait := env.RecoverWait
	if wait == 0 {
		wait = recoverWait
	}
	deadline := time.Now().Add(wait)
	for {
		h, err := t.HeapInuse(ctx)
		r.HeapPost = h
		if err == nil && h <= r.HeapPre+HeapSlack {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Fail("heap in use %s, %s before the attack: not back within %s", mib(h), mib(r.HeapPre), wait)
			break
		}
		time.Sleep(time.Second)
	}
	return r
}
