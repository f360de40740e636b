// Package board is the hardware the node runs on: which machine it is
// (device-tree model, serial, Pi revision), its live sensors (CPU
// temperature, the Raspberry Pi firmware's throttling and under-voltage
// flags), the activity LED and the button.
//
// Every path is read below an injectable root directory ("/" on the box, a
// fixture tree under testdata/ in tests), so nothing here needs the real
// hardware to be tested. A machine that is not a Pi is not an error: what
// cannot be found is reported as unknown.
//
// It must not know about the redPanda protocol, the node, systemd or the
// status page: it reports what the hardware says and leaves the decisions
// to its callers.
package board
