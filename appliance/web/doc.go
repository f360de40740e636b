// Package web serves the node's LAN face: the HTML status page a person
// opens on their phone (no external assets, auto-refreshing), the same
// report as /status.json, Prometheus /metrics, /healthz for probes, and
// while the node waits for pairing the pairing QR code (/pair.png, also
// inlined in the page).
//
// It renders what a status.Source reports and must not know how the
// figures are made. It listens on the LAN and loopback only by default
// (DefaultAddr): the page names the owner and the peers, which is nobody
// else's business.
package web
