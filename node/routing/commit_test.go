package routing

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// overlapRecords is the real store's records with two instruments: it
// holds each registration write until `want` of them are in flight (or a
// liveness bound passes), recording the most in flight at once, and it
// fails the write of one chosen identity.
type overlapRecords struct {
	Records
	want int
	fail channel.IdentityKey

	mu       sync.Mutex
	inFlight int
	most     int
}

var errDiskFull = errors.New("test: disk full")

func (o *overlapRecords) Put(k, v []byte) error {
	if !bytes.HasPrefix(k, keyReg) {
		return o.Records.Put(k, v)
	}
	o.mu.Lock()
	o.inFlight++
	o.most = max(o.most, o.inFlight)
	// Liveness bound only: a registry that writes one at a time never
	// gets here with more than one, and the test then fails on `most`.
	deadline := time.Now().Add(5 * time.Second)
	for o.inFlight < o.want && time.Now().Before(deadline) {
		o.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		o.mu.Lock()
	}
	o.mu.Unlock()
	var err error
	if bytes.Equal(k, recKey(keyReg, o.fail)) {
		err = errDiskFull
	} else {
		err = o.Records.Put(k, v)
	}
	o.mu.Lock()
	o.inFlight--
	o.mu.Unlock()
	return err
}

// Concurrent registrations are written at the same time (so the store's
// group commit can put them in one transaction and one fsync), not one
// per registry lock. A write that fails refuses only its own
// registration, with StatusInternal, keeps nothing of it, and frees its
// place: a retry and a newcomer both fit afterwards.
func TestConcurrentRegistrationsShareCommits(t *testing.T) {
	const n = 6
	ids := make([]*channel.Identity, n)
	for i := range ids {
		ids[i] = newIdentity(t)
	}
	failing := ids[2]
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := &overlapRecords{Records: db.Meta("registrations"), want: n, fail: failing.Public()}
	h := newHost(t)
	r, err := NewRegistry(h, recs, Config{AllowInfinity: true, Capacity: n,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	node := &testNode{h: h, db: db, r: r}

	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(t, "c", ids[i], nil)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.register(t, node, newChannelID(t))
		}()
	}
	wg.Wait()
	recs.mu.Lock()
	most := recs.most
	recs.mu.Unlock()
	if most != n {
		t.Fatalf("at most %d registration writes in flight at once, want all %d", most, n)
	}
	for i, err := range errs {
		if ids[i] == failing {
			if re := refusal(t, "failing write", err); re.Status != StatusInternal {
				t.Fatalf("failed write answered %s, want %s", re.Status, StatusInternal)
			}
			continue
		}
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	users := r.Users()
	if len(users) != n-1 {
		t.Fatalf("%d registrations, want %d", len(users), n-1)
	}
	for _, u := range users {
		if u.Identity == failing.Public() {
			t.Fatal("the registration whose write failed is served")
		}
	}
	if v, err := db.Meta("registrations").Get(recKey(keyReg, failing.Public())); err == nil && v != nil {
		t.Fatal("the failed registration left a record")
	}

	// Its place is free, and its identity is not stuck "being written".
	recs.mu.Lock()
	recs.want, recs.fail = 1, channel.IdentityKey{}
	recs.mu.Unlock()
	if _, err := clients[2].register(t, node, newChannelID(t)); err != nil {
		t.Fatalf("retry after a failed write: %v", err)
	}
	if got := len(r.Users()); got != n {
		t.Fatalf("%d registrations after the retry, want %d", got, n)
	}
	// Reopening the store finds exactly what was acknowledged.
	r.Close()
	r2, err := NewRegistry(newHost(t), db.Meta("registrations"), Config{AllowInfinity: true, Capacity: n,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got := len(r2.Users()); got != n {
		t.Fatalf("%d registrations after reload, want %d", got, n)
	}
}

// Two requests from one identity at once are decided one after the
// other: the second sees the first's registration, so neither is lost
// and the identity holds one place.
func TestSameIdentityRegistersInTurn(t *testing.T) {
	n := startNode(t, "", Config{AllowInfinity: true, Capacity: 4})
	id := newIdentity(t)
	a, b := newClient(t, "phone", id, nil), newClient(t, "tablet", id, nil)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.register(t, n, newChannelID(t))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	us := n.r.Users()
	if len(us) != 1 {
		t.Fatalf("%d registrations for one identity, want 1", len(us))
	}
	if !n.r.Registered(a.h.ID()) || !n.r.Registered(b.h.ID()) {
		t.Fatal("both devices should be registered under the one identity")
	}
}

// TestOlderRequestFromAnotherDeviceJoins: when two devices of one
// identity register at once, the request signed first can be decided
// second. It is not a replay: that device joins the registration, whose
// channels stay the newer request's; the same device's older request is
// still refused as stale.
func TestOlderRequestFromAnotherDeviceJoins(t *testing.T) {
	n := startNode(t, "", Config{AllowInfinity: true, Capacity: 4})
	id := newIdentity(t)
	phone, tablet := newHost(t), newHost(t)
	newer, older := newChannelID(t), newChannelID(t)
	now := time.UnixMilli(time.Now().UnixMilli())
	req := func(p host.Host, ts time.Time, ch channel.ID) *request {
		r := &request{Identity: id.Public(), Channels: []channel.ID{ch}, Timestamp: ts, Peer: p.ID(), Nonce: make([]byte, nonceSize)}
		if _, err := rand.Read(r.Nonce); err != nil {
			t.Fatal(err)
		}
		r.sign(id)
		return r
	}
	admit := func(r *request) response {
		resp, _, _ := n.r.admit(r)
		return resp
	}
	if resp := admit(req(tablet, now, newer)); resp.Status != StatusOK {
		t.Fatalf("the newer request: %s %s", resp.Status, resp.Detail)
	}
	if resp := admit(req(phone, now.Add(-time.Second), older)); resp.Status != StatusOK {
		t.Fatalf("another device's older request: %s %s, want it to join", resp.Status, resp.Detail)
	}
	if !n.r.Registered(phone.ID()) || !n.r.Registered(tablet.ID()) {
		t.Fatal("both devices should be registered")
	}
	us := n.r.Users()
	if len(us) != 1 || !slices.Equal(us[0].Channels, []channel.ID{newer}) || us[0].Peer != tablet.ID() {
		t.Fatalf("registrations %+v: want one, the newer request's (tablet, its channel)", us)
	}
	if resp := admit(req(tablet, now.Add(-2*time.Second), older)); resp.Status != StatusReplay {
		t.Fatalf("the same device's older request: %s %s, want a replay refusal", resp.Status, resp.Detail)
	}
}

// BenchmarkAdmit registers new identities on a real store (fsync per
// commit), one at a time and 64 at once: the ratio is how many
// registrations share a commit. Before admit wrote outside the registry
// lock, the two were equal.
func BenchmarkAdmit(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("concurrent=%d", par), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "node.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			h := newHost(b)
			r, err := NewRegistry(h, db.Meta("registrations"), Config{AllowInfinity: true, Capacity: 1 << 30,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ch := newChannelID(b)
			var next atomic.Int64
			b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
			run := func() {
				id := newIdentity(b)
				req := &request{Identity: id.Public(), Channels: []channel.ID{ch}, Timestamp: time.Now(),
					Peer: h.ID(), Nonce: binary.AppendVarint(nil, next.Add(1))}
				req.sign(id)
				if resp, _, _ := r.admit(req); resp.Status != StatusOK {
					b.Errorf("admit: %s %s", resp.Status, resp.Detail)
				}
			}
			if par == 1 {
				for b.Loop() {
					run()
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					run()
				}
			})
		})
	}
}
