package peersync

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// relayRule applies the relay rule to a message from peer from ("" for a
// local Publish) and stores it: validate, Accept, wanted, duplicate,
// quota. A message already held is found before its signature is checked,
// so copies from several announcers cost one store read each, not a
// verify. Only a stored message is announced, to everyone who wants it but
// the peers it came from. It returns once the message is durable.
func (s *Service) relayRule(from peer.ID, e *channel.Envelope) (channel.MessageID, error) {
	id := e.ID()
	pol := s.cfg.Policy
	if s.cfg.ClockTrusted != nil && !s.cfg.ClockTrusted() {
		pol.IgnoreClock = true
	}
	// A copy of a stored message (the ID is a hash of the signed bytes)
	// needs no signature check; the other checks still run, in the same
	// order, so its refusal reason is what it always was.
	// The signature check of a new message joins whatever other ingests
	// are checking at the same moment in one batch (sigChecks).
	held, _ := s.db.Has(id)
	var err error
	if held {
		err = channel.Revalidate(e, s.cfg.Now(), pol)
	} else if err = channel.ValidateUnsigned(e, s.cfg.Now(), pol); err == nil {
		// A peer that sent a bad signature lately is checked alone
		// (suspects); the clock is the machine's, not the policy's.
		now := time.Now()
		err = s.sigs.check(e, from != "" && s.suspects.is(from, now))
		if from != "" && errors.Is(err, channel.ErrBadSignature) {
			s.suspects.mark(from, now)
		}
	}
	if err != nil {
		return id, fmt.Errorf("sync: message %s: %w", id, err)
	}
	who := from
	if who == "" {
		who = s.h.ID()
	}
	if !s.accept(who, e.Channel) {
		return id, fmt.Errorf("sync: message %s from %s in channel %s: %w", id, who, e.Channel, ErrNotAccepted)
	}
	if from != "" && !s.Wants(e.Channel) {
		return id, fmt.Errorf("sync: message %s: channel %s: %w", id, e.Channel, ErrNotWanted)
	}
	// A copy already held costs no token and no wait for a commit: Put
	// would refuse it as a duplicate.
	if held {
		return id, fmt.Errorf("sync: message %s: %w", id, store.ErrExists)
	}
	if from != "" {
		if err := s.access.Admit(from, e.Channel); err != nil {
			return id, fmt.Errorf("sync: message %s from %s: %w", id, from, err)
		}
	}
	if _, err := s.db.Put(e); err != nil {
		return id, fmt.Errorf("sync: store %s: %w", id, err)
	}
	skip := s.fetch.announcers(id)
	if from != "" {
		skip = append(skip, from)
	}
	s.announce(wire.Header{ID: id, Channel: e.Channel, Timestamp: e.Timestamp, Size: uint32(e.Size())}, skip)
	s.notify(Stored{ID: id, Envelope: e, From: from})
	return id, nil
}

// reasonFor maps a relay-rule error to the reason sent in a Reject.
func reasonFor(err error) wirepb.Reason {
	switch {
	case errors.Is(err, channel.ErrBadVersion):
		return wirepb.Reason_REASON_BAD_VERSION
	case errors.Is(err, channel.ErrTooLarge):
		return wirepb.Reason_REASON_TOO_LARGE
	case errors.Is(err, channel.ErrExpired):
		return wirepb.Reason_REASON_EXPIRED
	case errors.Is(err, channel.ErrFromFuture):
		return wirepb.Reason_REASON_FROM_FUTURE
	case errors.Is(err, channel.ErrBadSignature):
		return wirepb.Reason_REASON_BAD_SIGNATURE
	case errors.Is(err, channel.ErrMalformed), errors.Is(err, wire.ErrMalformedFrame):
		return wirepb.Reason_REASON_MALFORMED
	case errors.Is(err, store.ErrExists):
		return wirepb.Reason_REASON_DUPLICATE
	case errors.Is(err, ErrNotAccepted):
		return wirepb.Reason_REASON_NOT_ACCEPTED
	case errors.Is(err, store.ErrQuotaExceeded):
		return wirepb.Reason_REASON_QUOTA_EXCEEDED
	case errors.Is(err, store.ErrDiskFull):
		return wirepb.Reason_REASON_DISK_FULL
	case errors.Is(err, ErrNotWanted):
		return wirepb.Reason_REASON_NOT_WANTED
	case errors.Is(err, ErrNotRequested):
		return wirepb.Reason_REASON_NOT_REQUESTED
	case errors.Is(err, ErrRateLimited):
		return wirepb.Reason_REASON_RATE_LIMITED
	}
	return wirepb.Reason_REASON_INTERNAL
}

// permanent reports whether a reason is a property of the message itself,
// so fetching it again from anyone is pointless.
func permanent(r wirepb.Reason) bool {
	switch r {
	case wirepb.Reason_REASON_BAD_VERSION, wirepb.Reason_REASON_TOO_LARGE, wirepb.Reason_REASON_EXPIRED,
		wirepb.Reason_REASON_BAD_SIGNATURE, wirepb.Reason_REASON_MALFORMED:
		return true
	}
	return false
}

// recentSet remembers up to n message IDs refused for good, oldest
// forgotten first, so reconciliation does not fetch them over and over.
type recentSet struct {
	mu   sync.Mutex
	n    int
	set  map[channel.MessageID]struct{}
	ring []channel.MessageID
	next int
}

// newRecentSet makes an empty set that grows as refusals come: most
// services never refuse a message, and a map sized for n up front cost
// each one ~280 KB (28 MB of heap for the relay benchmark's 100 clients,
// all of it scanned by every GC).
func newRecentSet(n int) *recentSet {
	return &recentSet{n: n, set: map[channel.MessageID]struct{}{}}
}

func (r *recentSet) add(id channel.MessageID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return
	}
	if len(r.ring) < r.n {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % r.n
	}
	r.set[id] = struct{}{}
}

func (r *recentSet) has(id channel.MessageID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}
