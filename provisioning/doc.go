// Package provisioning takes a home node from first boot to owned: the
// state machine (new -> waiting for pairing -> owned), the one-time
// pairing token (kept in memory, stored only as a derived key), the pairing
// URI and its QR code (terminal and PNG), the pairing protocol
// /redpanda/pair/1.0.0 on both sides (node: Provisioner, phone: Pair),
// factory reset and the button-hold detector that triggers it.
//
// The format and the protocol are specified in docs/PAIRING.md; a change
// here is a change there.
//
// It keeps its whole state in one record of a store bucket (Records), so
// every transition is one atomic, durable write. It must not know about
// boards, systemd, the status page or what the appliance forgets on reset:
// those reach it as hooks and plain inputs.
package provisioning
