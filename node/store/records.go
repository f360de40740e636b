package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// ChannelStats describes one channel's stored messages.
type ChannelStats struct {
	Channel  channel.ID
	Messages int
	Bytes    int64
	Newest   int64 // timestamp (ms) of the newest message
}

// Channels lists the channels that have stored messages, in channel ID
// order.
func (db *DB) Channels() ([]ChannelStats, error) {
	var out []ChannelStats
	err := db.read(func(s *snapshot) error {
		seen := map[channel.ID]bool{}
		b := s.tx.Bucket(bChans)
		err := b.ForEach(func(k, _ []byte) error {
			if len(k) != channel.IDSize {
				return nil
			}
			var ch channel.ID
			copy(ch[:], k)
			seen[ch] = true
			out = append(out, channelStats(ch, s.chanStats(ch)))
			return nil
		})
		if err != nil {
			return err
		}
		var only []ChannelStats // channels with pending messages only
		for _, g := range s.groups {
			for ch := range g.chans {
				if !seen[ch] {
					seen[ch] = true
					only = append(only, channelStats(ch, s.chanStats(ch)))
				}
			}
		}
		if len(only) > 0 {
			out = append(out, only...)
			slices.SortFunc(out, func(a, b ChannelStats) int { return bytes.Compare(a.Channel[:], b.Channel[:]) })
		}
		return nil
	})
	return out, err
}

func channelStats(ch channel.ID, s chanStats) ChannelStats {
	return ChannelStats{Channel: ch, Messages: int(s.count), Bytes: int64(s.bytes), Newest: s.newest}
}

// Stats describes the whole store. Bytes counts envelope bytes (what the
// quotas limit); FileSize is the database file on disk.
type Stats struct {
	Messages int
	Bytes    int64
	Channels int
	FileSize int64
}

// Stats returns the store's totals.
func (db *DB) Stats() (Stats, error) {
	var s Stats
	err := db.read(func(sn *snapshot) error {
		t := sn.totals()
		s.Messages, s.Bytes = int(t.count), int64(t.bytes)
		chans := sn.tx.Bucket(bChans)
		s.Channels = chans.Stats().KeyN
		counted := map[channel.ID]bool{}
		for _, g := range sn.groups {
			for ch := range g.chans {
				if !counted[ch] && chans.Get(ch[:]) == nil {
					s.Channels++
				}
				counted[ch] = true
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return s, fmt.Errorf("store: stats: %w", err)
	}
	s.FileSize = fi.Size()
	return s, nil
}

func syncKey(peer string, ch channel.ID) ([]byte, error) {
	if len(peer) == 0 || len(peer) > math.MaxUint16 {
		return nil, fmt.Errorf("store: sync state: peer name of %d bytes", len(peer))
	}
	k := make([]byte, 0, 2+len(peer)+channel.IDSize)
	k = binary.BigEndian.AppendUint16(k, uint16(len(peer)))
	k = append(k, peer...)
	return append(k, ch[:]...), nil
}

// SyncState returns the newest timestamp (ms) known to be in sync with
// peer for the channel, or 0 when there is none.
func (db *DB) SyncState(peer string, ch channel.ID) (int64, error) {
	k, err := syncKey(peer, ch)
	if err != nil {
		return 0, err
	}
	var ms int64
	err = db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bSync).Get(k); len(v) == 8 {
			ms = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return ms, err
}

// SetSyncState records, durably, that the channel is in sync with peer up
// to ms. The sweeper deletes it once ms falls out of retention.
func (db *DB) SetSyncState(peer string, ch channel.ID, ms int64) error {
	k, err := syncKey(peer, ch)
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(ms))
	return db.write(func(tx *bolt.Tx) error { return tx.Bucket(bSync).Put(k, v) })
}

// Meta is a named bucket of small records that another package keeps in
// the store's file (registrations, pairing state). Each write is durable
// when it returns. Keys and values are opaque bytes.
type Meta struct {
	db   *DB
	name []byte
}

// Meta returns the record bucket with the given name; it is created on the
// first Put.
func (db *DB) Meta(bucket string) *Meta { return &Meta{db: db, name: []byte(bucket)} }

var errEmptyName = errors.New("store: meta: empty bucket name or key")

// Get returns a copy of the value under key, or ErrNotFound.
func (m *Meta) Get(key []byte) ([]byte, error) {
	if len(m.name) == 0 || len(key) == 0 {
		return nil, errEmptyName
	}
	var out []byte
	err := m.db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMeta).Bucket(m.name)
		var v []byte
		if b != nil {
			v = b.Get(key)
		}
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte{}, v...)
		return nil
	})
	return out, err
}

// Put stores value under key; durable on return.
func (m *Meta) Put(key, value []byte) error {
	if len(m.name) == 0 || len(key) == 0 {
		return errEmptyName
	}
	k, v := append([]byte(nil), key...), append([]byte{}, value...)
	return m.db.write(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bMeta).CreateBucketIfNotExists(m.name)
		if err != nil {
			return fmt.Errorf("meta bucket %q: %w", m.name, err)
		}
		return b.Put(k, v)
	})
}

// Delete removes key; deleting a missing key is not an error. Durable on
// return.
func (m *Meta) Delete(key []byte) error {
	if len(m.name) == 0 || len(key) == 0 {
		return errEmptyName
	}
	k := append([]byte(nil), key...)
	return m.db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMeta).Bucket(m.name)
		if b == nil {
			return nil
		}
		return b.Delete(k)
	})
}

// ForEach calls fn for every record in key order with copies of the key
// and value; an error from fn stops the walk and is returned. fn must not
// write to the store: the walk holds a read transaction that a growing
// write would wait for.
func (m *Meta) ForEach(fn func(key, value []byte) error) error {
	if len(m.name) == 0 {
		return errEmptyName
	}
	return m.db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMeta).Bucket(m.name)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			return fn(append([]byte(nil), k...), append([]byte{}, v...))
		})
	})
}
