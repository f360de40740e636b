// Package store keeps a node's channel messages durably in one bbolt file:
// messages by ID, an index by (channel, timestamp, ID), per-channel counters
// and per-hour fingerprints for set reconciliation, per-peer sync state, the
// retention sweeper and the quotas. It also offers small named record
// buckets (Meta) to packages that need durable state in the same file.
//
// A write is acknowledged only after its transaction is on disk (fsync);
// concurrent writes share one transaction (group commit).
//
// The store does not validate envelopes: signatures, versions and clocks
// are the relay rule's business, checked by the sync layer before Put. It
// must not know about networking, peers beyond their names, or the
// appliance.
package store
