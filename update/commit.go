package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// What Commit found at this boot.
type Outcome int

const (
	// Routine: a committed system booted; its boots are given back.
	Routine Outcome = iota + 1
	// UpdateCommitted: the new system was on trial, became healthy, and
	// is now the committed one.
	UpdateCommitted
	// RolledBack: an update on trial in the other slot was given up by
	// the boot script (its boots ran out); this is the old system.
	RolledBack
	// Pending: an update is installed in the other slot and has not been
	// booted yet (no reboot since the installation).
	Pending
)

func (o Outcome) String() string {
	switch o {
	case Routine:
		return "routine"
	case UpdateCommitted:
		return "update committed"
	case RolledBack:
		return "rolled back"
	case Pending:
		return "update pending a reboot"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// DefaultCommitTimeout bounds how long a new system may take to become
// healthy on its trial boot (it may convert the message store first,
// which takes minutes on a Pi with a full one).
const DefaultCommitTimeout = 10 * time.Minute

// CommitOptions tune Commit.
type CommitOptions struct {
	// Healthy says whether the node is up: READY, its store opened and
	// answering, its host listening. Required.
	Healthy func(ctx context.Context) error
	// Timeout bounds the wait on a trial boot; DefaultCommitTimeout when 0.
	Timeout time.Duration
	// Poll is how often Healthy is asked; 2 s when 0.
	Poll time.Duration
	// OnCommit runs once the system is committed (a routine boot or an
	// update), before Commit returns: what a rollback would have needed
	// can go (the store's pre-migration snapshot).
	OnCommit func() error
	Logger   *slog.Logger
}

// Commit is run on every boot, after the node has started. On a committed
// system it gives the running slot its boots back. On a trial boot it
// waits up to the timeout for the node to be healthy and then commits the
// new system; if the node is not healthy in time it returns ErrNotHealthy
// and changes nothing, and the caller reboots: the boot script then runs
// the old system, whose Commit records the failure. The result of an
// update, when this boot ends one, is returned and kept in state.json.
func (s *System) Commit(ctx context.Context, o CommitOptions) (Outcome, *Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultCommitTimeout
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	boot, prev, err := s.LoadBoot()
	if err != nil {
		if prev.Env != nil {
			return 0, nil, err
		}
		// No valid copy: the script booted its defaults. Write a state
		// that keeps this system first.
		log.Warn("update: no valid boot state; writing a new one", "err", err)
	}
	rec, err := s.State.ReadRecord()
	if err != nil {
		log.Warn("update: state record unreadable; starting a new one", "err", err)
		rec = Record{}
	}
	if rec.Slots == nil {
		rec.Slots = map[Slot]string{}
	}
	cur, other := s.Current, s.Current.Other()
	outcome := Routine
	var res *Result

	switch {
	case boot.Trial == cur:
		log.Info("update: trial boot of the new system; waiting for the node to be healthy", "slot", cur, "version", s.Version, "timeout", o.Timeout)
		if err := WaitHealthy(ctx, o.Healthy, o.Timeout, o.Poll); err != nil {
			return 0, nil, fmt.Errorf("%w (%s): %v", ErrNotHealthy, o.Timeout, err)
		}
		res = &Result{ID: newID(), Outcome: Updated, Version: s.Version, From: "", Running: s.Version, At: time.Now().UTC()}
		if t := rec.Trial; t != nil {
			res.From = t.From
			res.Tries = t.Tries - boot.Left[cur]
		}
		outcome = UpdateCommitted
		boot.Trial = ""
		boot.Order = []Slot{cur, other}
		if boot.Left[other] == 0 && rec.Slots[other] != "" {
			boot.Left[other] = CommittedTries // the old system is the fallback again
		}
	case boot.Trial == other && boot.Left[other] > 0:
		// Installed, not booted yet: leave the trial alone.
		outcome = Pending
	case boot.Trial == other:
		res = &Result{ID: newID(), Outcome: Failed, Running: s.Version, At: time.Now().UTC(),
			Reason: "the new system was not healthy in time, or did not boot"}
		if t := rec.Trial; t != nil {
			res.Version, res.From, res.Tries = t.Version, t.From, t.Tries
		}
		outcome = RolledBack
		boot.Trial = ""
		boot.Order = []Slot{cur, other}
		boot.Left[other] = 0 // never again, unless reinstalled
		delete(rec.Slots, other)
	default:
		if len(boot.Order) == 0 || boot.Order[0] != cur {
			boot.Order = []Slot{cur, other}
		}
	}
	boot.Left[cur] = CommittedTries
	if outcome != Pending && boot.Left[other] > 0 && rec.Slots[other] == "" && rec.Trial == nil {
		// Nothing known in the other slot (a new card): keep it unbootable.
		boot.Left[other] = 0
	}
	if _, err := s.saveBoot(prev, boot); err != nil {
		return 0, nil, err
	}
	rec.Slots[cur] = s.Version
	rec.CommitFailed = nil
	if res != nil {
		rec.Trial = nil
		rec.Last = res
	}
	if err := s.State.WriteRecord(rec); err != nil {
		return outcome, res, err
	}
	if outcome != Pending {
		_ = s.State.ClearProgress()
	}
	if o.OnCommit != nil && outcome != Pending {
		if err := o.OnCommit(); err != nil {
			log.Warn("update: clean-up after commit", "err", err)
		}
	}
	switch outcome {
	case UpdateCommitted:
		log.Info("update: "+res.Message(), "slot", cur)
	case RolledBack:
		log.Warn("update: "+res.Message(), "slot", cur)
	default:
		log.Info("update: "+outcome.String(), "slot", cur, "version", s.Version)
	}
	return outcome, res, nil
}

// WaitHealthy asks healthy every poll (each try bounded by max(poll,
// 5 s)) until it answers nil, for at most timeout, and returns its last
// answer otherwise.
func WaitHealthy(ctx context.Context, healthy func(context.Context) error, timeout, poll time.Duration) error {
	if healthy == nil {
		return errors.New("no health check")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, max(poll, 5*time.Second))
		last := healthy(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}
