package store

import (
	"errors"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

func TestWipe(t *testing.T) {
	path := t.TempDir() + "/w.db"
	db := openAt(t, path, Options{})
	ch := newChannel()
	var es []*channel.Envelope
	for i := range 10 {
		es = append(es, envelope(ch, nowMs()-int64(i)*1000, 40))
	}
	putAll(t, db, es)
	if err := db.SetSyncState("peer", ch, nowMs()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"provisioning", "blocked"} {
		if err := db.Meta(name).Put([]byte("k"), []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 { // idempotent: a reset interrupted by a power cut runs it again
		if err := db.Wipe("provisioning"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if s, _ := db.Stats(); s.Messages != 0 || s.Bytes != 0 || s.Channels != 0 {
			t.Fatalf("after wipe: %+v", s)
		}
		if ok, _ := db.Has(es[0].ID()); ok {
			t.Fatal("message survived the wipe")
		}
		if ms, _ := db.SyncState("peer", ch); ms != 0 {
			t.Fatal("sync state survived the wipe")
		}
		if fp, _ := db.Fingerprint(ch, 0, nowMs()+1); fp.Count != 0 {
			t.Fatalf("fingerprint after wipe: %+v", fp)
		}
		if v, err := db.Meta("provisioning").Get([]byte("k")); err != nil || string(v) != "provisioning" {
			t.Fatalf("kept meta bucket: %q, %v", v, err)
		}
		if _, err := db.Meta("blocked").Get([]byte("k")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("dropped meta bucket still answers: %v", err)
		}
	}
	// The store works as before.
	putAll(t, db, es[:3])
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }
