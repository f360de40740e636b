package appliance

import (
	"sync"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// blockedBucket is the store bucket that keeps the blocklist across
// restarts; the factory reset wipes it with the rest.
const blockedBucket = "blocked"

// blocklist is the owner's channel blocklist: blocked channels are
// neither stored, announced nor served. It is the node's Blocklist, which
// the relay rule (node.Access) asks for every channel, so it has its own
// mutex; it keeps itself in its own store bucket.
type blocklist struct {
	mu     sync.Mutex
	ids    map[channel.ID]bool
	bucket *store.Meta // set by load, once the node's store is open
}

func newBlocklist() *blocklist { return &blocklist{ids: map[channel.ID]bool{}} }

// load reads the blocklist kept in bucket, which keeps it from now on.
func (b *blocklist) load(bucket *store.Meta) error {
	b.bucket = bucket
	return bucket.ForEach(func(k, _ []byte) error {
		var id channel.ID
		if len(k) == len(id) {
			copy(id[:], k)
			b.mu.Lock()
			b.ids[id] = true
			b.mu.Unlock()
		}
		return nil
	})
}

// Blocked reports whether ch is on the list (node.Blocklist).
func (b *blocklist) Blocked(ch channel.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ids[ch]
}

// list returns a copy of the blocked channels.
func (b *blocklist) list() map[channel.ID]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[channel.ID]bool, len(b.ids))
	for id := range b.ids {
		out[id] = true
	}
	return out
}

// block keeps ch blocked, first in the store, then in memory.
func (b *blocklist) block(ch channel.ID) error {
	if err := b.bucket.Put(ch[:], []byte{1}); err != nil {
		return err
	}
	b.mu.Lock()
	b.ids[ch] = true
	b.mu.Unlock()
	return nil
}

// unblock takes ch off the list; it reports false when ch was not on it.
func (b *blocklist) unblock(ch channel.ID) (bool, error) {
	if !b.Blocked(ch) {
		return false, nil
	}
	if err := b.bucket.Delete(ch[:]); err != nil {
		return true, err
	}
	b.mu.Lock()
	delete(b.ids, ch)
	b.mu.Unlock()
	return true, nil
}

// forget empties the list in memory: the factory reset, which wipes the
// bucket with the rest of the store.
func (b *blocklist) forget() {
	b.mu.Lock()
	b.ids = map[channel.ID]bool{}
	b.mu.Unlock()
}

var _ node.Blocklist = (*blocklist)(nil)
