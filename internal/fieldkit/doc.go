// Package fieldkit drives the real homenode and redpanda binaries as a
// person would, for integration tests: it builds them once, runs each home
// node in its own process with its own data directory and ports (Node),
// runs each person's client with its own home directory (App), one
// process per command, and keeps their apps running (Listener) while nodes
// are stopped, killed and started again. Pairing goes through the status
// page's QR code, decoded with zbarimg.
//
// It knows the binaries only from the outside: their flags, what they
// print, the status page and the admin commands. It must not import the
// node, appliance or client packages, so that what passes here is what a
// person gets.
package fieldkit
