// Package sync is the redPanda sync protocol (/redpanda/sync/2.0.0): how
// two peers (node-node or node-client) exchange the messages of the
// channels both want, over one long-lived libp2p stream per peer pair.
//
// A node opens a session only with a peer it has a reason to sync with
// (Access.Opens: a peer it knows), so a DHT contact is not told what it
// serves; it tells a known node only the channels that node may sync
// with it, and a peer it does not know that opens a session itself only
// the channels both want (what that peer named). Of two nodes the smaller peer ID opens; the larger opens after
// a wait (Config.OpenWait) when it knows the peer and no session came, so
// that a pair where only the larger knows the other still syncs, and of
// two streams that race both sides keep the smaller ID's.
//
// Each side declares the channels it wants (Hello, Want). A node announces
// the headers of newly stored messages to every peer that wants the
// channel, except the peers it got the message from; a peer fetches each
// body once, from the first announcer, and falls back to the next
// announcer when one does not deliver in time. After a (re)connect, and
// whenever announcements had to be dropped, the peers reconcile with
// range-based set reconciliation (Meyer; as in Negentropy): they compare
// (count, XOR of IDs) fingerprints of time ranges, split mismatching
// ranges, and list IDs once a range is small, so the cost is proportional
// to what is missing, not to what is stored. Every message passes the relay
// rule (channel.Validate, duplicate, Accept hook, quota) before it is
// stored or forwarded; a refused one is answered with a Reject and a
// reason. The signature checks of messages ingested at the same moment,
// from any peers, are done together in batches (channel.BatchVerifier,
// under the same ZIP 215 rule as a single check).
//
// Flow control: each peer has a bounded outbound queue (announcements are
// dropped past a soft limit and recovered by reconciliation; a peer that
// lets responses pile up past a hard limit is disconnected), a bounded
// number of outstanding fetches, and a bounded number of concurrent
// ingests, so a slow or hostile peer cannot grow memory without bound.
//
// The package takes a host and a store; it must not construct hosts, open
// stores, or know about registrations, the DHT or the appliance.
package peersync
