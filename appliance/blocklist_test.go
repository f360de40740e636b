package appliance

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// TestBlocklistKeptInItsBucket: a block holds at once and
// survives a restart (a fresh list loaded from the same bucket); unblock
// tells whether the channel was blocked; forget empties the list in
// memory only, since the factory reset wipes the bucket itself.
func TestBlocklistKeptInItsBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var spam, calm channel.ID
	rand.Read(spam[:])
	rand.Read(calm[:])
	b := newBlocklist()
	if err := b.load(db.Meta(blockedBucket)); err != nil {
		t.Fatal(err)
	}
	if err := b.block(spam); err != nil {
		t.Fatal(err)
	}
	if !b.Blocked(spam) || b.Blocked(calm) {
		t.Fatal("Blocked does not follow the block")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = newBlocklist()
	if err := b.load(db.Meta(blockedBucket)); err != nil {
		t.Fatal(err)
	}
	if l := b.list(); len(l) != 1 || !l[spam] {
		t.Fatalf("after a restart the list is %v, want only the blocked channel", l)
	}
	if was, err := b.unblock(calm); was || err != nil {
		t.Fatalf("unblocking a channel that is not blocked: %v, %v", was, err)
	}
	if was, err := b.unblock(spam); !was || err != nil {
		t.Fatalf("unblocking the blocked channel: %v, %v", was, err)
	}
	if b.Blocked(spam) {
		t.Fatal("still refused after unblock")
	}
	if err := b.block(calm); err != nil {
		t.Fatal(err)
	}
	b.forget()
	if b.Blocked(calm) || len(b.list()) != 0 {
		t.Fatal("forget left the channel blocked in memory")
	}
	// The bucket itself is left to the factory reset's store wipe.
	if _, err := db.Meta(blockedBucket).Get(calm[:]); err != nil {
		t.Fatalf("forget touched the bucket: %v", err)
	}
}
