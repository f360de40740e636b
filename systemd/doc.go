// Package systemd holds the home node's systemd units (homenode.service,
// homenode-pairing-console.service) and the sysusers.d entry that the .deb
// and the SD-card image install, and the tests that check them with
// systemd-analyze. It has no Go API: the units are data. It must not know
// how the daemon works inside; only its command line, its notify protocol
// and what it touches on the system (state, runtime socket, network).
package systemd
