package p2p

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// ReachabilityStatus is what the status page shows about whether friends
// can reach this node.
type ReachabilityStatus struct {
	// Reachability is AutoNAT's host-wide verdict: public, private or
	// unknown (not decided yet, or no peer could check).
	Reachability network.Reachability
	// Since is when Reachability last changed (or the watch started).
	Since time.Time
	// Relays are the relays this node holds a reservation with; non-empty
	// means the node is reachable through them while private.
	Relays []peer.ID
	// RelayAddrs are the /p2p-circuit addresses the reservations give this
	// node. Relays reached only over private or loopback addresses give a
	// slot but no address to advertise, so RelayAddrs may be empty while
	// Relays is not.
	RelayAddrs []ma.Multiaddr
	// ReachableAddrs and UnreachableAddrs are AutoNAT v2's per-address
	// verdicts (public addresses only; empty without Config.AutoNATv2).
	ReachableAddrs, UnreachableAddrs []ma.Multiaddr
	// RelayServing reports whether this node's relay service is running
	// (configured, and the node is public).
	RelayServing bool
}

// State is Reachability as the status page and `homenode status` print it:
// "public", "private" or "unknown".
func (s ReachabilityStatus) State() string {
	switch s.Reachability {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	default:
		return "unknown"
	}
}

// Reachability follows a host's reachability events: AutoNAT's verdict,
// the relay client's reservations and AutoNAT v2's per-address results.
type Reachability struct {
	h      host.Host
	sub    event.Subscription
	done   chan struct{}
	mu     sync.Mutex
	st     ReachabilityStatus
	change chan struct{} // closed and replaced on every change
}

// WatchReachability starts following h's reachability. The events it reads
// are stateful, so a watch started after the host still sees the current
// verdict. Close it before closing the host.
func WatchReachability(h host.Host) (*Reachability, error) {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtAutoRelayAddrsUpdated),
		new(event.EvtHostReachableAddrsChanged),
	})
	if err != nil {
		return nil, fmt.Errorf("p2p: watch reachability: %w", err)
	}
	r := &Reachability{h: h, sub: sub, done: make(chan struct{}), change: make(chan struct{})}
	r.st.Since = time.Now()
	go r.loop()
	return r, nil
}

func (r *Reachability) loop() {
	defer close(r.done)
	for e := range r.sub.Out() {
		r.mu.Lock()
		switch e := e.(type) {
		case event.EvtLocalReachabilityChanged:
			if e.Reachability != r.st.Reachability {
				r.st.Since = time.Now()
			}
			r.st.Reachability = e.Reachability
		case event.EvtAutoRelayAddrsUpdated:
			r.st.RelayAddrs = slices.Clone(e.RelayAddrs)
		case event.EvtHostReachableAddrsChanged:
			r.st.ReachableAddrs = slices.Clone(e.Reachable)
			r.st.UnreachableAddrs = slices.Clone(e.Unreachable)
		}
		close(r.change)
		r.change = make(chan struct{})
		r.mu.Unlock()
	}
}

// Status returns the current reachability.
func (r *Reachability) Status() ReachabilityStatus {
	r.mu.Lock()
	st := r.st
	r.mu.Unlock()
	st.RelayAddrs = slices.Clone(st.RelayAddrs)
	st.ReachableAddrs = slices.Clone(st.ReachableAddrs)
	st.UnreachableAddrs = slices.Clone(st.UnreachableAddrs)
	// Reservations are read live: autorelay tags the connection to every
	// relay it holds a slot with, and a slot is lost with its connection.
	for _, p := range r.h.Network().Peers() {
		if r.h.ConnManager().IsProtected(p, autorelayTag) {
			st.Relays = append(st.Relays, p)
		}
	}
	slices.Sort(st.Relays)
	st.RelayServing = slices.Contains(r.h.Mux().Protocols(), proto.ProtoIDv2Hop)
	return st
}

// Wait blocks until cond holds for the status, or ctx ends. Relay
// reservations are polled once a second besides the events, because the
// relay client announces them only through addresses, which it withholds
// for relays it reached on private addresses.
func (r *Reachability) Wait(ctx context.Context, cond func(ReachabilityStatus) bool) (ReachabilityStatus, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ch := r.change
		r.mu.Unlock()
		st := r.Status()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("p2p: wait for reachability (now %s, relays %v): %w", st.State(), st.Relays, ctx.Err())
		case <-ch:
		case <-tick.C:
		}
	}
}

// Close stops the watch.
func (r *Reachability) Close() error {
	err := r.sub.Close()
	<-r.done
	return err
}
