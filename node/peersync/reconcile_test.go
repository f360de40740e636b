package peersync

import (
	"crypto/rand"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// fakeEnvelope has random content: the store indexes, it does not verify,
// and reconciliation only looks at IDs and timestamps.
func fakeEnvelope(ch channel.ID, ts int64) *channel.Envelope {
	e := &channel.Envelope{Version: channel.Version, Channel: ch, Timestamp: ts, Ciphertext: make([]byte, 64)}
	rand.Read(e.Nonce[:])
	rand.Read(e.Ciphertext)
	return e
}

func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func put(t testing.TB, db *store.DB, e *channel.Envelope) channel.MessageID {
	t.Helper()
	id, err := db.Put(e)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// putAll stores envelopes from many goroutines, so the store's group
// commit makes one fsync serve many of them.
func putAll(t testing.TB, db *store.DB, es []*channel.Envelope) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(es))
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(es); i += 64 {
				if _, err := db.Put(es[i]); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// runReconcile plays both sides of a reconciliation in memory and returns
// what each side learned it lacks, the rounds and the bytes exchanged.
func runReconcile(t testing.TB, a, b *store.DB, ch channel.ID, lo, hi int64) (aLacks, bLacks []channel.MessageID, rounds, bytes int) {
	t.Helper()
	f, err := a.Fingerprint(ch, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	msg := []*wirepb.Range{fpRange(lo, hi, f)}
	sides := [2]*store.DB{b, a} // who answers the message in flight
	for turn := 0; len(msg) > 0; turn++ {
		frame := &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: ch[:], Ranges: msg}}}
		bytes += proto.Size(frame)
		if err := wire.CheckFrame(frame); err != nil {
			t.Fatalf("round %d: %v", turn, err)
		}
		if turn > 200 {
			t.Fatal("reconciliation does not terminate")
		}
		rounds++
		out, need, give, _, err := reconcileStep(sides[turn%2], ch, msg)
		if err != nil {
			t.Fatal(err)
		}
		var giveIDs []channel.MessageID
		for _, h := range give {
			giveIDs = append(giveIDs, h.ID)
		}
		if turn%2 == 0 { // B answered
			bLacks, aLacks = append(bLacks, need...), append(aLacks, giveIDs...)
		} else {
			aLacks, bLacks = append(aLacks, need...), append(bLacks, giveIDs...)
		}
		msg = out
	}
	return aLacks, bLacks, rounds, bytes
}

func sameIDs(t *testing.T, what string, got, want []channel.MessageID) {
	t.Helper()
	key := func(ids []channel.MessageID) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = string(id[:])
		}
		sort.Strings(out)
		return out
	}
	g, w := key(got), key(want)
	if len(g) != len(w) {
		t.Fatalf("%s: %d IDs, want %d", what, len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: ID sets differ", what)
		}
	}
}

// Reconciliation finds exactly the differences, in either direction, with
// traffic that grows with the differences rather than with the store.
func TestReconcileFindsExactDifferences(t *testing.T) {
	now := time.Now().UnixMilli()
	week := (7 * 24 * time.Hour).Milliseconds()
	tests := []struct {
		name                 string
		shared, onlyA, onlyB int
		sameMs               bool // every message in one millisecond
		maxBytes             int
	}{
		{"both empty", 0, 0, 0, false, 100},
		{"identical", 3000, 0, 0, false, 100},
		{"A empty", 0, 0, 50, false, 20_000},
		{"few differences in many", 3000, 5, 5, false, 40_000},
		{"one side ahead", 2000, 300, 0, false, 60_000},
		{"burst in one millisecond", 200, 3, 4, true, 40_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := openStore(t), openStore(t)
			var ch channel.ID
			rand.Read(ch[:])
			ts := func(i int) int64 {
				if tt.sameMs {
					return now - 1000
				}
				return now - week + int64(i)*7919%week
			}
			shared := make([]*channel.Envelope, tt.shared)
			for i := range shared {
				shared[i] = fakeEnvelope(ch, ts(i))
			}
			putAll(t, a, shared)
			putAll(t, b, shared)
			var wantA, wantB []channel.MessageID // what each lacks
			for i := range tt.onlyA {
				wantB = append(wantB, put(t, a, fakeEnvelope(ch, ts(i*31+7))))
			}
			for i := range tt.onlyB {
				wantA = append(wantA, put(t, b, fakeEnvelope(ch, ts(i*37+11))))
			}
			aLacks, bLacks, rounds, n := runReconcile(t, a, b, ch, now-week-1, now+1)
			sameIDs(t, "A lacks", aLacks, wantA)
			sameIDs(t, "B lacks", bLacks, wantB)
			if n > tt.maxBytes {
				t.Fatalf("%d bytes of reconcile frames, budget %d", n, tt.maxBytes)
			}
			t.Logf("%d rounds, %d bytes for %d differences among %d", rounds, n, tt.onlyA+tt.onlyB, tt.shared)
		})
	}
}

// FuzzReconcileStep feeds arbitrary Reconcile frames to a real store: no
// panic, and every answer is a valid frame within the caps.
func FuzzReconcileStep(f *testing.F) {
	db := openStore(f)
	var ch channel.ID
	ch[0] = 1
	now := time.Now().UnixMilli()
	var es []*channel.Envelope
	for i := range 200 {
		es = append(es, fakeEnvelope(ch, now-int64(i)*1000))
	}
	putAll(f, db, es)
	seed := func(rs ...*wirepb.Range) []byte {
		b, _ := proto.Marshal(&wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: ch[:], Ranges: rs}}})
		return b
	}
	f.Add(seed(fpRange(now-1_000_000, now+1, store.Fingerprint{})))
	f.Add(seed(&wirepb.Range{FromMs: -1 << 63, ToMs: 1<<63 - 1, Mode: &wirepb.Range_Fingerprint{Fingerprint: &wirepb.Fingerprint{Count: 1, Xor: make([]byte, 32)}}}))
	f.Add(seed(&wirepb.Range{FromMs: now - 5000, ToMs: now, Mode: &wirepb.Range_Ids{Ids: &wirepb.IDList{Ids: [][]byte{make([]byte, 32)}}}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := wire.DecodeFrame(in)
		if err != nil || fr.GetReconcile() == nil {
			return
		}
		rc := fr.GetReconcile()
		c, _ := wire.ChannelID(rc.GetChannel())
		out, _, _, _, err := reconcileStep(db, c, rc.GetRanges())
		if err != nil {
			t.Fatalf("reconcileStep on a valid frame: %v", err)
		}
		reply := &wirepb.Frame{Kind: &wirepb.Frame_Reconcile{Reconcile: &wirepb.Reconcile{Channel: rc.GetChannel(), Ranges: out}}}
		if err := wire.CheckFrame(reply); err != nil {
			t.Fatalf("invalid reply: %v", err)
		}
		if n := proto.Size(reply); n > wire.MaxFrameSize {
			t.Fatalf("reply of %d bytes over the frame cap", n)
		}
	})
}
