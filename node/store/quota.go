package store

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// Account is a quota that several channels share, beside the per-channel
// and total ones: the messages of every channel charged to it together
// may hold at most Limit envelope bytes. The node charges each served
// channel to one registrant (docs/SECURITY.md, "Storage quotas"); the
// store knows accounts only by name.
type Account struct {
	// Name identifies the account in errors ("owner", an identity).
	Name string
	// Limit is the account's own budget; 0 means none (only the channel
	// and total quotas apply).
	Limit int64
	// Reserved accounts may fill the whole total budget. The others stop
	// Options.ReservedBytes short of it, so that much is always left to
	// the reserved ones (the owner): friends together cannot take the
	// owner's share.
	Reserved bool
}

// quotaState is the accounts plan and the cached usage of its accounts.
type quotaState struct {
	plan atomic.Pointer[quotaPlan]
	// gen counts deletions (sweeps, DeleteChannel, Wipe): an account's
	// cached usage is good only for the generation it was summed in. It
	// starts at 1 so that a fresh account (gen 0) is always summed.
	gen atomic.Uint64
}

type quotaPlan struct {
	byChan map[channel.ID]*account
}

// account is an Account with its channels and cached usage; the cache is
// read and written only by the WAL's group commit (under walMu).
type account struct {
	Account
	chans []channel.ID
	used  uint64
	gen   uint64
}

// SetAccounts replaces the plan: the account each channel is charged to.
// A channel not in the plan is charged to no account and is not reserved.
// Until the first call (or after SetAccounts(nil)) there is no plan:
// every channel may use the whole total budget, as without accounts.
func (db *DB) SetAccounts(plan map[channel.ID]Account) {
	if plan == nil {
		db.quota.plan.Store(nil)
		return
	}
	p := &quotaPlan{byChan: make(map[channel.ID]*account, len(plan))}
	byName := map[Account]*account{}
	for ch, a := range plan {
		acc := byName[a]
		if acc == nil {
			acc = &account{Account: a}
			byName[a] = acc
		}
		acc.chans = append(acc.chans, ch)
		p.byChan[ch] = acc
	}
	db.quota.plan.Store(p)
}

// AccountUsage returns the bytes each account of the plan holds now, by
// name (for the status of registrants).
func (db *DB) AccountUsage() (map[string]int64, error) {
	p := db.quota.plan.Load()
	out := map[string]int64{}
	if p == nil {
		return out, nil
	}
	err := db.read(func(s *snapshot) error {
		for ch, a := range p.byChan {
			out[a.Name] += int64(s.chanStats(ch).bytes)
		}
		return nil
	})
	return out, err
}

// DiskFullAt is when a write last failed because the disk was full (zero:
// never since Open), for the status page.
func (db *DB) DiskFullAt() time.Time {
	if ns := db.diskFullAt.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// quotaChanged marks every cached account usage stale (after deletions).
func (db *DB) quotaChanged() { db.quota.gen.Add(1) }

// quotaCheck is one group commit's view of the accounts: the plan, the
// generation read before its snapshot, and what the batch adds.
type quotaCheck struct {
	db    *DB
	plan  *quotaPlan
	gen   uint64
	batch map[*account]uint64
}

func (db *DB) newQuotaCheck() *quotaCheck {
	// The generation is read before the snapshot begins: a deletion that
	// commits later bumps it and the next batch sums again.
	return &quotaCheck{db: db, gen: db.quota.gen.Load(), plan: db.quota.plan.Load(), batch: map[*account]uint64{}}
}

// check decides whether a message of size bytes in ch fits its account
// and the total budget the account may use; tot is the store's bytes
// including the batch so far.
func (q *quotaCheck) check(s *snapshot, m *pmsg, size, tot uint64) error {
	limit := uint64(q.db.opt.MaxTotalBytes)
	var a *account
	if q.plan != nil {
		a = q.plan.byChan[m.ch]
		if a == nil || !a.Reserved {
			limit -= min(limit, uint64(max(q.db.opt.ReservedBytes, 0)))
		}
	}
	if tot+size > limit {
		if limit < uint64(q.db.opt.MaxTotalBytes) {
			// Short: a Reject's detail carries it to the client.
			return fmt.Errorf("%w: the node holds %d bytes; %d of its %d are kept for the owner",
				ErrQuotaExceeded, tot, q.db.opt.ReservedBytes, q.db.opt.MaxTotalBytes)
		}
		return fmt.Errorf("store: put %s: %w: the store holds %d of its %d bytes", m.id, ErrQuotaExceeded, tot, limit)
	}
	if a == nil || a.Limit <= 0 {
		return nil
	}
	if a.gen != q.gen {
		var used uint64
		for _, ch := range a.chans {
			used += s.chanStats(ch).bytes
		}
		a.used, a.gen = used, q.gen
	}
	used := a.used + q.batch[a]
	if used+size > uint64(a.Limit) {
		return fmt.Errorf("%w: the channels of %s hold %d of its %d bytes", ErrQuotaExceeded, a.Name, used, a.Limit)
	}
	return nil
}

// add counts an accepted message against its account (in the batch).
func (q *quotaCheck) add(ch channel.ID, size uint64) {
	if q.plan == nil {
		return
	}
	if a := q.plan.byChan[ch]; a != nil {
		q.batch[a] += size
	}
}

// commit adds the batch's bytes to the cached usage once the batch is
// durable.
func (q *quotaCheck) commit() {
	for a, n := range q.batch {
		if a.gen == q.gen {
			a.used += n
		}
	}
}

// DeleteChannel deletes every stored message of ch, its counters and its
// fingerprints, in bounded transactions like a sweep, and returns how many
// messages and envelope bytes went. Acknowledged messages still in the
// write-ahead log are applied first (or, on a full disk, dropped from
// it), so none survives. Sync state is left to expire. It is what
// blocking a channel and revoking the users who brought it in do with
// what it stored.
func (db *DB) DeleteChannel(ch channel.ID) (removed int, freed int64, err error) {
	defer db.quotaChanged()
	err = db.runJob(func(applyErr error) error {
		if errors.Is(applyErr, ErrDiskFull) {
			removed = db.dropPending(func(m *pmsg) bool { return m.ch == ch })
			return nil
		}
		return applyErr
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: delete channel %s: %w", ch, err)
	}
	for {
		var n int
		var bytes int64
		more := false
		err := db.write(func(tx *bolt.Tx) error {
			n, bytes, more = 0, 0, false
			var vs []victim
			scanIdx(tx, ch, math.MinInt64, math.MaxInt64, func(ts int64, id, val []byte) bool {
				if len(vs) >= sweepChunk {
					more = true
					return false
				}
				seq, size, _ := parseIdxValue(val)
				vs = append(vs, victim{ch: ch, ts: ts, id: append([]byte(nil), id...),
					key: idxKey(ch, ts, channel.MessageID(id)), seq: seqKey(seq), size: uint64(size)})
				bytes += int64(size)
				return true
			})
			n = len(vs)
			return deleteVictims(tx, vs)
		})
		if err != nil {
			return removed, freed, fmt.Errorf("store: delete channel %s: %w", ch, err)
		}
		removed += n
		freed += bytes
		if !more {
			break
		}
	}
	if removed > 0 {
		db.log.Info("channel deleted", "channel", ch, "messages", removed, "bytes", freed)
	}
	return removed, freed, nil
}
