// Package admin is the node's local administration channel: a Unix socket
// (mode 0660, group from the config) speaking line-delimited JSON, its
// client, and the table and JSON rendering the `homenode` subcommands print.
//
// Requests are dispatched to a Backend that the appliance implements; this
// package must not know how status is gathered or how a revocation or a
// block is carried out. Only local users in the socket's group can reach
// it, but every request is still bounded and validated.
package admin
