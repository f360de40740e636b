package status

// Health is the node's answer to "are you up?": what the commit step of
// a firmware update (homenode update commit) waits for before it makes a
// new version permanent.
type Health struct {
	// Ready: start-up is complete (systemd was sent READY=1).
	Ready bool `json:"ready"`
	// Store is "ok" once the message store answered a read, else why not.
	Store string `json:"store"`
	// Listen are the host's listen addresses (multiaddrs).
	Listen []string `json:"listen"`
	// Version is the running version.
	Version string `json:"version"`
}
