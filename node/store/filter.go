package store

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// idFilter is a Bloom filter of the message IDs in bbolt, so that the
// duplicate check of a message the store does not hold (what almost every
// relayed message is) is answered from memory, without a bbolt read
// transaction. It only ever says "certainly not stored" or "maybe": IDs
// are added before the transaction that stores them commits and never
// removed, so a swept message is a false positive (one bbolt read) until
// the filter is rebuilt, never a false negative.
//
// Memory: filterBitsPerID bits (1.25 bytes) for each ID it is sized for,
// which is 1.5 times the stored messages at the last rebuild plus
// filterMinIDs: 1.7 MiB for a Pi's 1 GiB store of ~900k messages, 80 KiB
// for an empty one. It is rebuilt (by a scan of the ID index, in the
// applier) once it has taken as many IDs as it was sized for, which keeps
// its false-positive rate under ~1%.
type idFilter struct {
	words []atomic.Uint64
	nbits uint64
	size  int64        // IDs it was sized for
	added atomic.Int64 // IDs added since it was built, swept ones included
}

const (
	filterBitsPerID = 10
	filterHashes    = 7 // optimal for 10 bits an ID: ~0.8% false positives when full
)

// filterMinIDs is the least a filter is sized for; a variable so tests
// can force rebuilds.
var filterMinIDs = 64 << 10

func newIDFilter(stored int) *idFilter {
	size := int64(stored) + int64(stored)/2 + int64(filterMinIDs)
	nbits := uint64(size) * filterBitsPerID
	f := &idFilter{words: make([]atomic.Uint64, (nbits+63)/64), size: size}
	f.nbits = uint64(len(f.words)) * 64
	return f
}

// positions returns the ID's bit positions. IDs are SHA-256 hashes: two
// of their words serve as the double-hashing pair. Someone grinding IDs
// to collide in the filter gains false positives, which only cost a read.
func (f *idFilter) positions(id []byte) (pos [filterHashes]uint64) {
	h1 := binary.LittleEndian.Uint64(id[0:8])
	h2 := binary.LittleEndian.Uint64(id[8:16]) | 1
	for i := range pos {
		pos[i], _ = bits.Mul64(h1+uint64(i)*h2, f.nbits) // uniform in [0, nbits) without a division
	}
	return pos
}

func (f *idFilter) add(id []byte) {
	for _, p := range f.positions(id) {
		f.words[p/64].Or(1 << (p % 64))
	}
	f.added.Add(1)
}

// mayHave is false only for an ID that was never added.
func (f *idFilter) mayHave(id []byte) bool {
	for _, p := range f.positions(id) {
		if f.words[p/64].Load()&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// full reports that the filter has taken as many IDs as it was sized for.
func (f *idFilter) full() bool { return f.added.Load() >= f.size }

// buildIDFilter makes a filter of every ID in the transaction's index.
func buildIDFilter(tx *bolt.Tx) *idFilter {
	// Sized by counting the keys, not by the totals record: memory
	// follows what is really there even if that record were damaged.
	c := tx.Bucket(bIDs).Cursor()
	n := 0
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	f := newIDFilter(n)
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == channel.IDSize {
			f.add(k)
		}
	}
	return f
}

// rebuildFilter replaces a full filter with one sized for the store as it
// is, dropping the IDs swept since. Run by the applier (or Open before it
// starts): no apply overlaps the scan, and every later apply adds to the
// new filter.
func (db *DB) rebuildFilter(force bool) error {
	if f := db.filter.Load(); f != nil && !force && !f.full() {
		return nil
	}
	return db.classify(db.bolt.View(func(tx *bolt.Tx) error {
		return safeCall(func(tx *bolt.Tx) error {
			db.filter.Store(buildIDFilter(tx))
			return nil
		}, tx)
	}))
}
