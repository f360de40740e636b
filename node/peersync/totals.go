package peersync

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Totals counts what the service did with messages since it started, for
// the counters a person graphs (appliance/metrics).
type Totals struct {
	// Received are messages that arrived from peers (fetched bodies and
	// pushes), whatever became of them.
	Received uint64
	// Stored are messages newly stored, from peers and local publishes.
	Stored uint64
	// Duplicates arrived from a peer already held.
	Duplicates uint64
	// Relayed are messages sent to peers (bodies they fetched, pushes).
	Relayed uint64
	// Refused are messages from peers refused by the relay rule, by
	// reason: "bad_signature", "expired", "not_accepted", "not_wanted",
	// "quota_exceeded", "rate_limited", ... (wirepb.Reason names, lower
	// case, without the REASON_ prefix).
	Refused map[string]uint64
}

type totals struct {
	received, stored, duplicates, relayed atomic.Uint64
	refused                               [32]atomic.Uint64 // by wirepb.Reason; room for new reasons
}

// count records the outcome of one ingest from peer from ("" for local).
func (t *totals) count(from peer.ID, err error) {
	if from != "" {
		t.received.Add(1)
	}
	switch {
	case err == nil:
		t.stored.Add(1)
	case from == "":
	case errors.Is(err, store.ErrExists):
		t.duplicates.Add(1)
	default:
		if r := int(reasonFor(err)); r >= 0 && r < len(t.refused) {
			t.refused[r].Add(1)
		}
	}
}

// sent records a frame written to a peer.
func (t *totals) sent(kind int) {
	if kind == kindBody || kind == kindPush {
		t.relayed.Add(1)
	}
}

// Totals returns the service's message counters.
func (s *Service) Totals() Totals {
	t := Totals{Received: s.totals.received.Load(), Stored: s.totals.stored.Load(),
		Duplicates: s.totals.duplicates.Load(), Relayed: s.totals.relayed.Load(), Refused: map[string]uint64{}}
	for r := range wirepb.Reason_name { // zeros too, so a graph starts at 0
		switch reason := wirepb.Reason(r); reason {
		case wirepb.Reason_REASON_UNSPECIFIED, wirepb.Reason_REASON_DUPLICATE:
		default:
			t.Refused[ReasonLabel(reason)] = 0
		}
	}
	for r := range s.totals.refused {
		if n := s.totals.refused[r].Load(); n > 0 {
			t.Refused[ReasonLabel(wirepb.Reason(r))] = n
		}
	}
	return t
}

// ReasonLabel is a refusal reason as a metric label: REASON_NOT_ACCEPTED
// is "not_accepted".
func ReasonLabel(r wirepb.Reason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
}

// ingest applies the relay rule (relayRule) and counts the outcome.
func (s *Service) ingest(from peer.ID, e *channel.Envelope) (channel.MessageID, error) {
	id, err := s.relayRule(from, e)
	s.totals.count(from, err)
	return id, err
}
