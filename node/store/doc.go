// Package store keeps a node's channel messages durably in one bbolt file:
// message bodies by arrival sequence number, an ID -> sequence index, an
// index by (channel, timestamp, ID), per-channel counters and per-hour
// fingerprints for set reconciliation, per-peer sync state, the retention
// sweeper and the quotas. It also offers small named record buckets (Meta)
// to packages that need durable state in the same file.
//
// The file's layout is schema version 2 (the buckets are listed in
// store.go): bodies are appended in arrival order, so applying messages
// with random IDs writes full pages at the end of one bucket instead of
// dirtying a random leaf page each. Open migrates a version 1 file (bodies
// keyed by ID) in place, in bounded, resumable batches (migrate.go); Open
// blocks meanwhile (100k messages took 3.5 s on a 2-core x86 server). An
// older homenode refuses a version 2 file.
//
// The duplicate check (Has, and Put's) looks at the pending messages, then
// at an in-memory Bloom filter of the stored IDs (filter.go: 1.25 bytes
// per ID it is sized for, 1.7 MiB for ~900k messages), and reads bbolt
// only when the filter says the ID may be there.
//
// A write is acknowledged only after it is on disk. A Put is appended to a
// write-ahead log beside the file (<file>.wal.<n>): concurrent Puts share
// one sequential write and one fdatasync (group commit). Acknowledged
// messages are readable at once from memory, and a background applier
// moves them into bbolt in large transactions; Open replays a log a crash
// left behind and Close applies and removes it. Other writes (sync state,
// Meta, Sweep, Wipe) are bbolt transactions, also shared by concurrent
// writers.
//
// A power cut at any moment leaves a store that opens, and loses nothing
// that was acknowledged. What it can leave, and why each is treated as
// never written rather than as damage:
//
//   - A torn last batch. A Put is acknowledged only after its batch's write
//     and fdatasync returned, and a batch is written only after the
//     previous one's fdatasync, so at most one batch can be partly on disk:
//     the last one of the segment Puts were going to, never acknowledged.
//     Its bytes may be cut short, left zero (preallocated space, or
//     sectors the card did not write) or a mix. Damage with no valid
//     batch-starting record after it, in the last segment holding records,
//     is that batch: Open truncates it with a warning.
//   - A segment whose creation was cut short. Its magic is written,
//     fdatasync'ed and its directory entry synced before any record is
//     appended to it and before any later segment exists. A segment whose
//     magic is missing or cut short, with nothing but zeros after it (the
//     file's size reached the disk, its data did not), never had a record
//     appended: Open removes it with a warning.
//   - A store file of zeros (up to 1 MiB) beside a WAL without records:
//     bbolt's first pages never reached the disk, and every commit writes
//     a non-zero meta page, so nothing was stored in it: Open starts it
//     afresh with a warning.
//
// Anything else is damage to acknowledged data, and Open refuses the store
// with ErrCorrupt and changes no file: damage followed by a valid batch
// start, damage in a segment followed by one holding records, a lost
// magic followed by anything but zeros or by a later segment with
// records, a zero store file beside WAL records, a checksummed record that
// is not an envelope. Two assumptions: fdatasync means durable (a card
// that acknowledges a flush it did not do can lose anything, and no log
// can tell), and the file system does not show another file's old blocks
// after a crash (ext4's default data=ordered does not; with data=writeback
// such bytes would be reported as damage).
//
// The store does not validate envelopes: signatures, versions and clocks
// are the relay rule's business, checked by the sync layer before Put. It
// must not know about networking, peers beyond their names, or the
// appliance.
package store
