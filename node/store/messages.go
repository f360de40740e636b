package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/redpanda-p2p/homenode/node/channel"
	bolt "go.etcd.io/bbolt"
)

// hourMs is the width of a fingerprint bucket.
const hourMs = int64(3600 * 1000)

// Header is what a node announces of a message: enough to decide whether
// to fetch the body.
type Header struct {
	ID        channel.MessageID
	Channel   channel.ID
	Timestamp int64 // Unix milliseconds
	Size      uint32
}

// Fingerprint summarises the message IDs of a time range: two stores hold
// the same messages in the range exactly when their fingerprints agree
// (up to XOR collisions, which an attacker cannot steer without SHA-256
// preimages of signed envelopes).
type Fingerprint struct {
	Count int
	XOR   [32]byte
}

func (f *Fingerprint) add(id []byte, n int) {
	f.Count += n
	for i := range f.XOR {
		f.XOR[i] ^= id[i]
	}
}

// sortable maps a signed timestamp to an unsigned one with the same order,
// so big-endian keys sort negative times first.
func sortable(ts int64) uint64 { return uint64(ts) ^ (1 << 63) }

func unsortable(u uint64) int64 { return int64(u ^ (1 << 63)) }

func idxKey(ch channel.ID, ts int64, id channel.MessageID) []byte {
	k := make([]byte, 0, channel.IDSize+8+len(id))
	k = append(k, ch[:]...)
	k = binary.BigEndian.AppendUint64(k, sortable(ts))
	return append(k, id[:]...)
}

func idxSeek(ch channel.ID, ts int64) []byte {
	k := make([]byte, 0, channel.IDSize+8)
	k = append(k, ch[:]...)
	return binary.BigEndian.AppendUint64(k, sortable(ts))
}

// parseIdx splits an index key that starts with ch; ok is false past the
// channel's keys.
func parseIdx(ch channel.ID, k []byte) (ts int64, id []byte, ok bool) {
	if len(k) != channel.IDSize+8+sha256.Size || !bytes.HasPrefix(k, ch[:]) {
		return 0, nil, false
	}
	return unsortable(binary.BigEndian.Uint64(k[channel.IDSize:])), k[channel.IDSize+8:], true
}

func fpKey(ch channel.ID, hour int64) []byte { return idxSeek(ch, hour) }

// seqKey is a body's key (and an ids value): its arrival sequence number.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// idxValue is an index entry's value: where the body is, and its size.
func idxValue(seq uint64, size uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(make([]byte, 0, 12), seq), size)
}

// parseIdxValue splits an index value; ok is false for a damaged one.
func parseIdxValue(v []byte) (seq uint64, size uint32, ok bool) {
	if len(v) != 12 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:]), true
}

// getBody returns a stored message's bytes (aliasing the transaction's
// memory), or nil.
func getBody(tx *bolt.Tx, id []byte) []byte {
	seq := tx.Bucket(bIDs).Get(id)
	if seq == nil {
		return nil
	}
	return tx.Bucket(bBody).Get(seq)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// chanStats is the per-channel counter record.
type chanStats struct {
	count, bytes uint64
	newest       int64
}

func getChanStats(b *bolt.Bucket, ch channel.ID) chanStats {
	v := b.Get(ch[:])
	if len(v) != 24 {
		return chanStats{newest: math.MinInt64}
	}
	return chanStats{
		count:  binary.BigEndian.Uint64(v),
		bytes:  binary.BigEndian.Uint64(v[8:]),
		newest: int64(binary.BigEndian.Uint64(v[16:])),
	}
}

func putChanStats(b *bolt.Bucket, ch channel.ID, s chanStats) error {
	if s.count == 0 {
		return b.Delete(ch[:])
	}
	v := make([]byte, 0, 24)
	v = binary.BigEndian.AppendUint64(v, s.count)
	v = binary.BigEndian.AppendUint64(v, s.bytes)
	v = binary.BigEndian.AppendUint64(v, uint64(s.newest))
	return b.Put(append([]byte(nil), ch[:]...), v)
}

type totals struct{ count, bytes uint64 }

func getTotals(tx *bolt.Tx) totals {
	v := tx.Bucket(bInfo).Get(kTotals)
	if len(v) != 16 {
		return totals{}
	}
	return totals{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])}
}

func putTotals(tx *bolt.Tx, t totals) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), t.count)
	return tx.Bucket(bInfo).Put(kTotals, binary.BigEndian.AppendUint64(v, t.bytes))
}

// addToFingerprint XORs id into its hour bucket and adjusts the count by
// delta (+1 on insert, -1 on delete); an emptied bucket is removed.
func addToFingerprint(b *bolt.Bucket, ch channel.ID, ts int64, id []byte, delta int64) error {
	k := fpKey(ch, floorDiv(ts, hourMs))
	var count int64
	xor := make([]byte, 32)
	if v := b.Get(k); len(v) == 40 {
		count = int64(binary.BigEndian.Uint64(v))
		copy(xor, v[8:])
	}
	count += delta
	for i := range xor {
		xor[i] ^= id[i]
	}
	if count <= 0 {
		return b.Delete(k)
	}
	return b.Put(k, append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(count)), xor...))
}

// Put stores an envelope and returns its ID once the write is durable.
// It returns ErrExists for a message already stored (nothing changes),
// ErrQuotaExceeded when the channel's or the node's budget would be
// exceeded, ErrDiskFull, or ErrClosed. It does not check the signature.
//
// Durable means in the write-ahead log (one fdatasync shared by every Put
// waiting); the message is readable at once and reaches the database file
// in the background.
func (db *DB) Put(e *channel.Envelope) (channel.MessageID, error) {
	// The envelope's kept encoding, which nothing writes again: the
	// store keeps it (pending, then until the apply has written it)
	// without copying the ~1.2 KB of every message.
	raw := e.Encoding()
	// The envelope's kept ID when its fields still match the encoding it
	// was decoded or sealed with, else the hash of raw: the same value,
	// without a second SHA-256 of the body on every relayed message.
	id := e.ID()
	if len(raw) > channel.MaxEnvelopeSize {
		return id, fmt.Errorf("store: put %s: %w: %d bytes", id, channel.ErrTooLarge, len(raw))
	}
	req := &putReq{m: &pmsg{id: id, ch: e.Channel, ts: e.Timestamp, raw: raw}, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return id, ErrClosed
	}
	db.puts <- req
	db.mu.RUnlock()
	err := <-req.done
	if err != nil && !errors.Is(err, ErrExists) {
		db.log.Debug("message refused", "id", id, "err", err)
	}
	return id, err
}

// GetRaw returns the canonical envelope bytes of a stored message, or
// ErrNotFound.
func (db *DB) GetRaw(id channel.MessageID) ([]byte, error) {
	var raw []byte
	err := db.read(func(s *snapshot) error {
		if m := s.pending(id); m != nil {
			raw = bytes.Clone(m.raw)
			return nil
		}
		v := getBody(s.tx, id[:])
		if v == nil {
			return ErrNotFound
		}
		raw = append([]byte(nil), v...)
		return nil
	})
	return raw, err
}

// Get returns a stored message, or ErrNotFound.
func (db *DB) Get(id channel.MessageID) (*channel.Envelope, error) {
	raw, err := db.GetRaw(id)
	if err != nil {
		return nil, err
	}
	e, err := channel.UnmarshalEnvelope(raw)
	if err != nil {
		return nil, corruptError(db.path, fmt.Errorf("message %s does not decode: %w", id, err))
	}
	return e, nil
}

// Has reports whether a message is stored. The relay asks it of every
// incoming message before its signature check, so it is kept cheap: the
// pending groups first (a duplicate usually arrives soon after the
// original, before it is applied), then the in-memory ID filter, which
// answers for almost every new message, and only then a read of the ID
// index.
func (db *DB) Has(id channel.MessageID) (bool, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return false, ErrClosed
	}
	// A group leaves the table only after its transaction committed, so
	// a message missing here but acknowledged is in the read below; no
	// snapshot (applied generation, group list) is needed.
	if db.pendingHas(id) {
		return true, nil
	}
	if !db.filter.Load().mayHave(id[:]) {
		return false, nil
	}
	var ok bool
	err := db.classify(db.bolt.View(func(tx *bolt.Tx) error {
		return safeCall(func(tx *bolt.Tx) error {
			ok = tx.Bucket(bIDs).Get(id[:]) != nil
			return nil
		}, tx)
	}))
	return ok, err
}

// pendingHas reports whether an acknowledged message waits in memory.
func (db *DB) pendingHas(id channel.MessageID) bool {
	db.pend.mu.RLock()
	defer db.pend.mu.RUnlock()
	for _, g := range db.pend.groups {
		if g.byID[id] != nil {
			return true
		}
	}
	return false
}

// scanIdx calls fn for the channel's index entries with timestamps in
// [from, to), in (timestamp, id) order, until fn returns false.
func scanIdx(tx *bolt.Tx, ch channel.ID, from, to int64, fn func(ts int64, id, size []byte) bool) {
	if to <= from {
		return
	}
	c := tx.Bucket(bIdx).Cursor()
	for k, v := c.Seek(idxSeek(ch, from)); k != nil; k, v = c.Next() {
		ts, id, ok := parseIdx(ch, k)
		if !ok || ts >= to {
			return
		}
		if !fn(ts, id, v) {
			return
		}
	}
}

// Headers returns the headers of the channel's messages with timestamps in
// [fromMs, toMs), ordered by (timestamp, ID), at most limit of them
// (limit <= 0: all).
func (db *DB) Headers(ch channel.ID, fromMs, toMs int64, limit int) ([]Header, error) {
	var hs []Header
	err := db.read(func(s *snapshot) error {
		pend := s.pendingIn(ch, fromMs, toMs)
		var stored []Header
		scanIdx(s.tx, ch, fromMs, toMs, func(ts int64, id, v []byte) bool {
			h := Header{Channel: ch, Timestamp: ts}
			copy(h.ID[:], id)
			_, h.Size, _ = parseIdxValue(v)
			stored = append(stored, h)
			return limit <= 0 || len(stored) < limit
		})
		// Merge the two ordered lists; a message is in only one of them.
		hs = make([]Header, 0, len(stored)+len(pend))
		i, j := 0, 0
		for (i < len(stored) || j < len(pend)) && (limit <= 0 || len(hs) < limit) {
			if j == len(pend) || i < len(stored) && headerBefore(stored[i], pend[j]) {
				hs = append(hs, stored[i])
				i++
				continue
			}
			m := pend[j]
			hs = append(hs, Header{ID: m.id, Channel: ch, Timestamp: m.ts, Size: uint32(len(m.raw))})
			j++
		}
		if len(hs) == 0 {
			hs = nil
		}
		return nil
	})
	return hs, err
}

func headerBefore(h Header, m *pmsg) bool {
	if h.Timestamp != m.ts {
		return h.Timestamp < m.ts
	}
	return bytes.Compare(h.ID[:], m.id[:]) < 0
}

// Fingerprint returns the count and XOR of the IDs of the channel's
// messages with timestamps in [fromMs, toMs). Whole hours inside the range
// come from per-hour fingerprints kept on every write; only the partial
// hours at the edges are scanned, so a 7-day range costs ~168 reads plus
// at most two hours of messages. Messages not yet applied from the
// write-ahead log are added one by one.
func (db *DB) Fingerprint(ch channel.ID, fromMs, toMs int64) (Fingerprint, error) {
	var f Fingerprint
	if toMs <= fromMs {
		return f, nil
	}
	err := db.read(func(s *snapshot) error {
		tx := s.tx
		for _, m := range s.pendingIn(ch, fromMs, toMs) {
			f.add(m.id[:], 1)
		}
		scan := func(from, to int64) {
			scanIdx(tx, ch, from, to, func(_ int64, id, _ []byte) bool {
				f.add(id, 1)
				return true
			})
		}
		first := ceilDiv(fromMs, hourMs) // first hour starting at or after fromMs
		end := floorDiv(toMs, hourMs)    // hours [first, end) lie inside the range
		if first >= end {
			scan(fromMs, toMs)
			return nil
		}
		scan(fromMs, first*hourMs)
		c := tx.Bucket(bFP).Cursor()
		for k, v := c.Seek(fpKey(ch, first)); k != nil; k, v = c.Next() {
			hour, ok := parseFP(ch, k)
			if !ok || hour >= end {
				break
			}
			if len(v) == 40 {
				f.add(v[8:], int(binary.BigEndian.Uint64(v)))
			}
		}
		scan(end*hourMs, toMs)
		return nil
	})
	return f, err
}

func parseFP(ch channel.ID, k []byte) (hour int64, ok bool) {
	if len(k) != channel.IDSize+8 || !bytes.HasPrefix(k, ch[:]) {
		return 0, false
	}
	return unsortable(binary.BigEndian.Uint64(k[channel.IDSize:])), true
}
