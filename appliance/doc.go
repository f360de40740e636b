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
package appliance
