// Package redpanda is the redPanda client a phone app embeds, made for
// gomobile: gobind binds all of it to Java/Kotlin (Android) and
// Objective-C/Swift (iOS), nothing skipped (a test checks), so an app
// runs the whole life of a user through it: a home (identity, channels,
// history), pairing a home node from its QR code, the owned node's
// status, channels, messages and receipts through a callback, history
// pages, hop tickets, nodes, invitations, device links, backups and
// contact lookups. docs/MOBILE.md is the app developer's guide.
//
// The types are the ones gobind accepts: strings, bools, int64s, []byte,
// pointers to the structs below, lists behind Size/Get, and one callback
// interface (Listener). Times are Unix milliseconds. Long calls take a
// timeout in milliseconds (0 or less: the call's default) and an
// optional Cancel. Every error carries a stable code (ErrorCode; the
// codes are in errors.go) as well as its message. Every method is safe
// to call from any thread.
//
// A phone sleeps: Pause takes the client off the network and closes its
// home (no connection, no timer, no open file), keeping the node
// registrations; Resume opens it again, reconnects and catches up. The
// client never listens (it only dials its nodes: client.Config.DialOnly)
// and never runs the DHT, so it never lists the device's network
// interfaces, which Android 11+ forbids.
//
// This package is a thin layer over the SDK (client) and the two
// owner-side protocols a phone speaks (provisioning's pairing,
// owner's status, backups and updates). It uses only their exported API
// and must not know how they work inside, nor the appliance (the daemon
// on the node: nothing under appliance/).
package redpanda
