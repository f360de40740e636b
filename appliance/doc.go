// Package appliance composes the redPanda node (node), first-boot pairing
// (provisioning) and the hardware (board) into the home node daemon: it
// starts them in order and stops them in reverse, speaks to systemd
// (READY, STATUS, WATCHDOG, STOPPING), serves the LAN status page,
// /metrics and the local admin socket, and watches health: disk, memory,
// temperature, power and whether the clock can be trusted.
//
// Its subpackages are the parts a person or systemd sees (status, web,
// metrics, admin, sdnotify), the machine's figures (health) and the home
// router (portmap). The node packages never import this one.
//
// Its own concerns each have a file: appliance.go starts and stops the
// parts (the composition root), loops.go runs the daemon's loops
// (heartbeat, systemd status, clock), board.go the LED and the reset
// button, pairing.go pairing and following the owner's node channel,
// report.go the status report, adminbackend.go the admin socket's
// backend, blocklist.go the owner's channel blocklist, and update.go with
// updater.go firmware updates.
package appliance
