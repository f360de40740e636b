package routing

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// The admission policy: whether a registration request whose signature
// verified is admitted, and what it then registers. It is pure: it reads a
// snapshot of the registry (admissionInput) and neither writes records
// nor touches the host, so every rule is table-tested (policy_test.go).
// The Registry applies the verdict: it remembers the request, evicts,
// writes the record and answers.

// admissionInput is what one request is decided against.
type admissionInput struct {
	req   *request
	now   time.Time
	owner channel.IdentityKey // zero: not known yet
	// seen says the request's signature was admitted before (replayCache).
	seen    bool
	revoked func(channel.IdentityKey) bool
	// regs are the registrations held; writingNew counts new ones being
	// written, which take room too.
	regs       map[channel.IdentityKey]*entry
	writingNew int
}

// verdict is the policy's answer: admit (StatusOK) at hop, or refuse with
// status and detail.
type verdict struct {
	status Status
	detail string
	hop    int
	// old is the identity's registration the request renews or joins.
	old *entry
	// joining: another device of old's identity joins it (its request was
	// signed before the last accepted one but decided after it).
	joining bool
	// evict is the registration that makes room; nil when there is room.
	evict *entry
}

func refuseWith(st Status, format string, a ...any) verdict {
	return verdict{status: st, detail: fmt.Sprintf(format, a...)}
}

// admission applies the rules in order: clock window, replay, chain to
// the owner, channel quota, room (evicting the farthest hop, the newest
// of them first, for a nearer one).
func admission(cfg *Config, in admissionInput) verdict {
	req := in.req
	if d := req.Timestamp.Sub(in.now); d > cfg.ReplayWindow || d < -cfg.ReplayWindow {
		return refuseWith(StatusReplay, "request timestamp %s is %s away from the node's clock (window %s)",
			req.Timestamp.UTC().Format(time.RFC3339), d.Round(time.Second), cfg.ReplayWindow)
	}
	if in.seen {
		return refuseWith(StatusReplay, "request seen before")
	}
	old := in.regs[req.Identity]
	joining := false
	if old != nil && req.Timestamp.Before(old.last) {
		if req.Peer == old.Peer {
			return refuseWith(StatusReplay, "request is older than the registration it would replace")
		}
		// Another device of the identity, whose request was signed
		// before the last accepted one but decided after it (two devices
		// registering at once, as after the node restarts): not a replay,
		// which seen has caught, so the device joins the registration,
		// while the newer request's channels, hop and chain stay.
		joining = true
	}

	hop, err := req.Chain.verify(in.owner, req.Identity, in.now, in.revoked)
	switch {
	case errors.Is(err, ErrRevoked):
		return refuseWith(StatusRevoked, "%v", err)
	case errors.Is(err, ErrHopTooFar):
		return refuseWith(StatusHopTooFar, "%v", err)
	case err != nil:
		return refuseWith(StatusBadChain, "%v", err)
	case hop == HopInfinity && !cfg.AllowInfinity:
		if in.owner == (channel.IdentityKey{}) {
			return refuseWith(StatusNotAllowed, "this node has no owner yet and serves no strangers")
		}
		return refuseWith(StatusNotAllowed, "no hop ticket chain, and this node serves only its owner's friends")
	}
	if len(req.Channels) > cfg.MaxChannels {
		return refuseWith(StatusQuotaExceeded, "%d channels, at most %d per registrant", len(req.Channels), cfg.MaxChannels)
	}

	v := verdict{status: StatusOK, hop: hop, old: old, joining: joining}
	if old == nil && len(in.regs)+in.writingNew >= cfg.Capacity {
		worst := evictionCandidate(in.regs)
		if worst == nil || rank(worst.Hop) <= rank(hop) {
			return refuseWith(StatusFull, "node serves %d registrations, all at hop %s or nearer", cfg.Capacity, hopString(hop))
		}
		v.evict = worst
	}
	return v
}

// evictionCandidate is the registration a nearer hop displaces first: the
// farthest hop, and of those the newest.
func evictionCandidate(regs map[channel.IdentityKey]*entry) *entry {
	var worst *entry
	for _, e := range regs {
		if worst == nil || rank(e.Hop) > rank(worst.Hop) ||
			(rank(e.Hop) == rank(worst.Hop) && e.Since.After(worst.Since)) {
			worst = e
		}
	}
	return worst
}

// evictionDetail is what the evicted client is told.
func evictionDetail(hop int, evicted *entry, capacity int) string {
	return fmt.Sprintf("evicted by a registration at hop %s; you were at hop %s and the node holds %d",
		hopString(hop), hopString(evicted.Hop), capacity)
}

// admittedEntry is the registration an admitted request makes: old joined
// by another device, or a new one that keeps old's start and devices.
func admittedEntry(cfg *Config, in admissionInput, v verdict) *entry {
	req, old := in.req, v.old
	if v.joining {
		e := *old
		e.others = append(slices.DeleteFunc(slices.Clone(old.others), func(d peer.ID) bool { return d == req.Peer }), req.Peer)
		if len(e.others) > MaxDevices-1 {
			e.others = e.others[len(e.others)-(MaxDevices-1):]
		}
		return &e
	}
	ms := time.UnixMilli(in.now.UnixMilli()) // what the records keep
	e := &entry{Registration: Registration{Identity: req.Identity, Peer: req.Peer, Hop: v.hop,
		Channels: slices.Clone(req.Channels), Since: ms, Expires: ms.Add(cfg.TTL)}, last: req.Timestamp}
	if old != nil {
		e.Since = old.Since
		e.others = devicesAfter(old, e.Peer)
	}
	if v.hop > 0 {
		e.path = req.Chain.sponsors()
		e.SponsoredBy = e.path[len(e.path)-1]
		e.root = in.owner
		if end := req.Chain.notAfter(); end.Before(e.Expires) {
			e.Expires = end
		}
	} else if v.hop == 0 {
		e.root = in.owner
	}
	return e
}

// rank orders hops with strangers last.
func rank(hop int) int {
	if hop == HopInfinity {
		return MaxHop + 1
	}
	return hop
}

func hopString(h int) string {
	if h == HopInfinity {
		return "infinity"
	}
	return fmt.Sprint(h)
}
