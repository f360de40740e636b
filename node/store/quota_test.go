package store

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// fill puts messages of size n into ch until the store refuses one, and
// returns the bytes stored and the refusal.
func fill(t *testing.T, db *DB, ch channel.ID, n int) (int64, error) {
	t.Helper()
	var stored int64
	ts := time.Now().UnixMilli()
	for i := range 100000 {
		e := envelope(ch, ts+int64(i), n)
		if _, err := db.Put(e); err != nil {
			return stored, err
		}
		stored += int64(len(e.Encoding()))
	}
	t.Fatal("never refused")
	return 0, nil
}

// TestAccountLimit: the channels of one account share its budget; other
// accounts and the reserved owner keep theirs.
func TestAccountLimit(t *testing.T) {
	db := openTemp(t, Options{})
	f1, f2, other, mine := newChannel(), newChannel(), newChannel(), newChannel()
	friend := Account{Name: "rpiFriend", Limit: 64 << 10}
	db.SetAccounts(map[channel.ID]Account{f1: friend, f2: friend,
		other: {Name: "rpiOther", Limit: 64 << 10}, mine: {Name: "owner", Reserved: true}})
	a, _ := fill(t, db, f1, 4<<10) // most of the budget in one channel
	b, err := fill(t, db, f2, 4<<10)
	if !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "rpiFriend") {
		t.Fatalf("friend's second channel: %v, want ErrQuotaExceeded naming the account", err)
	}
	if a+b > 64<<10 || a+b < 56<<10 {
		t.Fatalf("friend stored %d bytes in two channels, budget %d", a+b, 64<<10)
	}
	if _, err := db.Put(envelope(other, 1, 4<<10)); err != nil {
		t.Fatalf("another account's channel: %v", err)
	}
	if _, err := db.Put(envelope(mine, 1, 4<<10)); err != nil {
		t.Fatalf("the owner's channel: %v", err)
	}
	use, err := db.AccountUsage()
	if err != nil || use["rpiFriend"] != a+b {
		t.Fatalf("usage %v, %v; want rpiFriend %d", use, err, a+b)
	}

	// Deleting one of its channels frees the account at once.
	removed, freed, err := db.DeleteChannel(f1)
	if err != nil || removed == 0 || freed != a {
		t.Fatalf("DeleteChannel: %d messages, %d bytes, %v; want %d bytes", removed, freed, err, a)
	}
	if _, err := db.Put(envelope(f2, 2, 4<<10)); err != nil {
		t.Fatalf("friend after its channel was deleted: %v", err)
	}
}

// TestReservedForOwner: non-reserved accounts together stop ReservedBytes
// short of the total; the owner fills the rest.
func TestReservedForOwner(t *testing.T) {
	db := openTemp(t, Options{MaxTotalBytes: 256 << 10, ReservedBytes: 96 << 10})
	var friends []channel.ID
	plan := map[channel.ID]Account{}
	for i := range 4 {
		ch := newChannel()
		friends = append(friends, ch)
		plan[ch] = Account{Name: "rpiF" + string(rune('a'+i)), Limit: 1 << 30}
	}
	stranger, owner := newChannel(), newChannel() // stranger: in no account
	plan[owner] = Account{Name: "owner", Reserved: true}
	db.SetAccounts(plan)
	var friendBytes int64
	for _, ch := range friends {
		n, err := fill(t, db, ch, 4<<10)
		friendBytes += n
		if !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("friend: %v", err)
		}
	}
	if _, err := db.Put(envelope(stranger, 1, 4<<10)); !errors.Is(err, ErrQuotaExceeded) || !strings.Contains(err.Error(), "kept for the owner") {
		t.Fatalf("a channel in no account past the reserve: %v", err)
	}
	if friendBytes > 160<<10 {
		t.Fatalf("friends stored %d bytes, more than the %d not reserved", friendBytes, 160<<10)
	}
	ownerBytes, err := fill(t, db, owner, 4<<10)
	if !errors.Is(err, ErrQuotaExceeded) || ownerBytes < 88<<10 {
		t.Fatalf("owner stored %d bytes (%v) after the friends filled their part, want ~%d", ownerBytes, err, 96<<10)
	}
	st, _ := db.Stats()
	if st.Bytes > 256<<10 {
		t.Fatalf("store holds %d bytes, total %d", st.Bytes, 256<<10)
	}
}

// TestAccountsExactUnderConcurrency: concurrent Puts into one account's
// channels never pass its budget, however the group commit batches them.
func TestAccountsExactUnderConcurrency(t *testing.T) {
	db := openTemp(t, Options{})
	acc := Account{Name: "rpiFlood", Limit: 200 << 10}
	var chs []channel.ID
	plan := map[channel.ID]Account{}
	for range 8 {
		ch := newChannel()
		chs = append(chs, ch)
		plan[ch] = acc
	}
	db.SetAccounts(plan)
	var mu sync.Mutex
	var stored int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 40 {
				e := envelope(chs[i%len(chs)], int64(i*1000+j), 2<<10)
				if _, err := db.Put(e); err == nil {
					mu.Lock()
					stored += int64(len(e.Encoding()))
					mu.Unlock()
				} else if !errors.Is(err, ErrQuotaExceeded) {
					t.Errorf("put: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if stored > 200<<10 || stored < 190<<10 {
		t.Fatalf("stored %d bytes under a budget of %d", stored, 200<<10)
	}
}

// TestSweepFreesAccount: what the retention sweep deletes no longer
// counts against the account (its cached usage is summed again).
func TestSweepFreesAccount(t *testing.T) {
	clk := &clock{t: time.Now()}
	db := openTemp(t, Options{Now: clk.Now, Retention: time.Hour})
	ch := newChannel()
	db.SetAccounts(map[channel.ID]Account{ch: {Name: "rpiF", Limit: 32 << 10}})
	old := clk.Now().Add(-30 * time.Minute).UnixMilli()
	for i := range 100 {
		if _, err := db.Put(envelope(ch, old+int64(i), 4<<10)); err != nil {
			if !errors.Is(err, ErrQuotaExceeded) {
				t.Fatal(err)
			}
			break
		}
	}
	if _, err := db.Put(envelope(ch, clk.Now().UnixMilli(), 4<<10)); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("full account: %v", err)
	}
	clk.Set(clk.Now().Add(time.Hour))
	if n, err := db.Sweep(); err != nil || n == 0 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if _, err := db.Put(envelope(ch, clk.Now().UnixMilli(), 4<<10)); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
}

// TestDeleteChannel: every message of the channel goes, pending or
// applied, with its counters and fingerprints; other channels stay; the
// file checks clean and a reopen agrees.
func TestDeleteChannel(t *testing.T) {
	defer func(n int) { sweepChunk = n }(sweepChunk)
	sweepChunk = 64 // several chunks
	path := filepath.Join(t.TempDir(), "s.db")
	db := openAt(t, path, Options{})
	gone, kept := newChannel(), newChannel()
	now := time.Now().UnixMilli()
	var keptIDs []channel.MessageID
	var es []*channel.Envelope
	for i := range 300 {
		es = append(es, envelope(gone, now+int64(i), 256))
		if i%10 == 0 {
			e := envelope(kept, now+int64(i), 256)
			es = append(es, e)
			keptIDs = append(keptIDs, e.ID())
		}
	}
	putAll(t, db, es)
	if err := db.flush(); err != nil {
		t.Fatal(err)
	}
	for range 10 { // some still pending in the WAL
		if _, err := db.Put(envelope(gone, now-1, 300)); err != nil {
			t.Fatal(err)
		}
	}
	removed, freed, err := db.DeleteChannel(gone)
	if err != nil || removed != 310 || freed == 0 {
		t.Fatalf("DeleteChannel: %d, %d, %v", removed, freed, err)
	}
	check := func(db *DB) {
		t.Helper()
		hs, _ := db.Headers(gone, math.MinInt64, math.MaxInt64, 0)
		fp, _ := db.Fingerprint(gone, math.MinInt64+1, math.MaxInt64)
		st, _ := db.Stats()
		if len(hs) != 0 || fp.Count != 0 || st.Messages != len(keptIDs) || st.Channels != 1 {
			t.Fatalf("after delete: %d headers, fingerprint %d, stats %+v", len(hs), fp.Count, st)
		}
		for _, id := range keptIDs {
			if ok, _ := db.Has(id); !ok {
				t.Fatal("a message of another channel went")
			}
		}
		if err := db.Check(); err != nil {
			t.Fatal(err)
		}
	}
	check(db)
	db.Close()
	db = openAt(t, path, Options{})
	check(db)
	if n, _, err := db.DeleteChannel(gone); err != nil || n != 0 {
		t.Fatalf("deleting again: %d, %v", n, err)
	}
}
