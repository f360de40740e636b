// Package client is the light-client SDK: what a phone app embeds to take
// part in redPanda without routing for anyone. A client has an author
// identity, the keys of its channels, its own small libp2p host and its own
// message store and sync service, and talks only to the 3–5 super nodes it
// is registered with (paper §4.4.1). Catching up after being offline is the
// sync protocol's reconciliation; the same message arriving from several
// nodes is stored, processed and shown once, by message ID.
//
// The envelope store keeps the relay window (7 days), as every sync peer
// does, so reconciliation and the store agree. What the user reads is kept
// apart, decrypted and without expiry, in a history bucket of the same
// bbolt file: long history survives the relay window and its quotas.
//
// A Client keeps its life cycle (Open, Connect, Flush, Close), its
// identity and the messaging core (Send, History, Subscribe, Listen,
// Events); each feature is a small facade type in a file of its own,
// reached from the client: Channels, Nodes, Devices, Contacts, Invites,
// Friends, Tickets, Cover and Backups (facade_*.go). A facade holds
// nothing but the client and delegates to the implementation, which is
// unexported and lives in the file named for its concern.
//
// The public API is made of plain types (strings, []byte, ints, time.Time,
// small structs, a callback); package mobile/redpanda wraps it in the
// types gomobile's gobind accepts, for phone apps (docs/MOBILE.md). The
// package must not know about the appliance (boards, systemd,
// provisioning) or about how a super node stores registrations.
package client
