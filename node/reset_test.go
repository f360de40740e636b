package node

import (
	"errors"
	"testing"

	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestReset: the factory reset forgets the owner's registration and what
// the owner stored, wipes the record buckets but those kept, and may run
// again.
func TestReset(t *testing.T) {
	owner := mustID(t)
	n := startWith(t, Config{DataDir: t.TempDir(), NoDHT: true, Routing: routing.Config{Owner: owner.Public()}})
	op := newRegistrant(t, n, owner, nil, newKeys(t, 1)...)
	if reason, detail := op.send(t, 0); reason != wirepb.Reason_REASON_UNSPECIFIED {
		t.Fatalf("the owner's message was refused: %s %q", reason, detail)
	}
	if st, err := n.Store.Stats(); err != nil || st.Messages != 1 || len(n.Registry.Users()) != 1 {
		t.Fatalf("before reset: %d messages (%v), %d registrations; want 1, 1", st.Messages, err, len(n.Registry.Users()))
	}
	for _, b := range []string{"provisioning", "backup"} {
		if err := n.Store.Meta(b).Put([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := n.Reset("provisioning"); err != nil {
			t.Fatal(err)
		}
	}
	if us := n.Registry.Users(); len(us) != 0 {
		t.Fatalf("after reset %d registrations are served", len(us))
	}
	if st, err := n.Store.Stats(); err != nil || st.Messages != 0 {
		t.Fatalf("after reset the store holds %d messages (%v)", st.Messages, err)
	}
	if _, err := n.Store.Meta("provisioning").Get([]byte("k")); err != nil {
		t.Fatalf("the kept bucket was wiped: %v", err)
	}
	if _, err := n.Store.Meta("backup").Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another bucket survived the reset: %v", err)
	}
}
