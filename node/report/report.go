// Package report is the format of the reports a home node posts into its
// owner's master channel (docs/DEVICES.md, docs/UPDATES.md): "updated to
// 1.2-1", "update to 1.2-1 failed after 1 try, back on 1.1-1". The owner's
// client gives the node a write-only key of the master channel (rpw…): the
// node can post there and read nothing, like the paper's debug-report
// channel. A report is a KindControl message whose body is 'N' and a JSON
// object, authored by the node's own identity (its libp2p Ed25519 key), so
// a device tells it from its own control messages and knows which node
// wrote it.
//
// The package knows only the body's encoding; it must not know the
// appliance, the SDK or the update machinery.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/node/control"
)

// Prefix is the first byte of a report body (node/control's tag).
const Prefix = control.NodeReport

// MaxBody bounds a report body.
const MaxBody = 4096

// Kinds of report.
const (
	KindUpdate = "update"
)

// Report is one message from the node to its owner.
type Report struct {
	Kind string    `json:"kind"`
	Text string    `json:"text"` // the sentence for a person
	At   time.Time `json:"at"`
	// Update reports: how it ended ("updated" or "failed"), the version
	// installed, the one before, the one running now, and boots tried.
	Outcome string `json:"outcome,omitempty"`
	Version string `json:"version,omitempty"`
	From    string `json:"from,omitempty"`
	Running string `json:"running,omitempty"`
	Tries   int    `json:"tries,omitempty"`
}

// ErrNotReport: a body that is not a node report.
var ErrNotReport = errors.New("report: not a node report")

// Encode makes a message body.
func Encode(r Report) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	b = append([]byte{Prefix}, b...)
	if len(b) > MaxBody {
		return nil, fmt.Errorf("report: %d bytes, limit %d", len(b), MaxBody)
	}
	return b, nil
}

// Decode parses a message body.
func Decode(b []byte) (Report, error) {
	var r Report
	if len(b) < 2 || b[0] != Prefix || len(b) > MaxBody {
		return r, ErrNotReport
	}
	if err := json.Unmarshal(b[1:], &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrNotReport, err)
	}
	if r.Kind == "" || r.Text == "" {
		return r, fmt.Errorf("%w: no kind or text", ErrNotReport)
	}
	return r, nil
}
