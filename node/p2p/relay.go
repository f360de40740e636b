package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// RelayLimits bound the circuit v2 relay service a reachable node offers to
// its registered users. libp2p's defaults (2 minutes and 128 KiB per relayed
// connection) suit a short hop before hole punching; a phone whose home node
// sits behind carrier-grade NAT keeps its connection through the relay for
// as long as it is open, so the per-connection caps are raised, while the
// number of reservations and circuits stays bounded. Only peers the RelayACL
// approves can hold a reservation, and only they can be reached through the
// relay, so the raised caps apply to approved peers only.
type RelayLimits struct {
	// Duration is how long one relayed connection may live before the relay
	// resets it (the client then reconnects). Default: 1 hour.
	Duration time.Duration
	// Data is the bytes one relayed connection may carry in each direction
	// before it is reset. Default: 64 MiB.
	Data int64
	// Reservations is the number of peers holding a slot at once.
	// Default: 64.
	Reservations int
	// CircuitsPerPeer is the number of relayed connections open to or from
	// one peer. Default: 16.
	CircuitsPerPeer int
	// ReservationsPerIP is the slots held from one IP address; a household
	// behind one carrier-grade NAT address shares it. Default: 16.
	ReservationsPerIP int
	// ReservationTTL is how long a reservation lasts before the holder must
	// refresh it (and pass the ACL again). Default: 1 hour.
	ReservationTTL time.Duration
}

// RelayPeerSource yields relay candidates for the relay client: reachable
// nodes (a friend's home node) that may grant this node a slot. It has
// autorelay.PeerSource's contract: send at most num peers and close the
// channel; close it too when ctx is cancelled.
type RelayPeerSource func(ctx context.Context, num int) <-chan peer.AddrInfo

// Relay client tuning. libp2p's autorelay waits for 4 candidates or 3
// minutes before reserving and backs off a failed relay for an hour, which
// suits a swarm of public relays, not a household with one or two friends'
// nodes: reserve on the first candidate and retry a friend's node that was
// rebooting after a few minutes.
const (
	relayBootDelay = 5 * time.Second
	relayBackoff   = 2 * time.Minute
	// DefaultRelays is the number of reservations a node behind NAT seeks.
	DefaultRelays = 2
)

// autorelayTag is the connection-manager tag autorelay puts on the relays it
// holds a reservation with (go-libp2p p2p/host/autorelay relay_finder.go);
// Reachability reads it to list the node's relays.
const autorelayTag = "autorelay"

func (l *RelayLimits) withDefaults() error {
	if l.Duration == 0 {
		l.Duration = time.Hour
	}
	if l.Data == 0 {
		l.Data = 64 << 20
	}
	setInt(&l.Reservations, 64)
	setInt(&l.CircuitsPerPeer, 16)
	setInt(&l.ReservationsPerIP, 16)
	if l.ReservationTTL == 0 {
		l.ReservationTTL = time.Hour
	}
	if l.Duration < 0 || l.Data < 0 || l.Reservations < 0 || l.CircuitsPerPeer < 0 ||
		l.ReservationsPerIP < 0 || l.ReservationTTL < 0 {
		return fmt.Errorf("%w: negative relay limit in %+v", ErrConfig, *l)
	}
	return nil
}

// resources turns the limits into the relay's resources.
func (l RelayLimits) resources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	rc.Limit = &relayv2.RelayLimit{Duration: l.Duration, Data: l.Data}
	rc.ReservationTTL = l.ReservationTTL
	rc.MaxReservations = l.Reservations
	rc.MaxCircuits = l.CircuitsPerPeer
	rc.MaxReservationsPerIP = l.ReservationsPerIP
	// Friends often share an internet provider: a per-ASN cap below the
	// total would turn away registered users for where they live.
	rc.MaxReservationsPerASN = l.Reservations
	return rc
}

// relayACL adapts Config.RelayACL to libp2p's ACLFilter.
type relayACL struct {
	allow func(peer.ID) bool
	log   *slog.Logger
}

// AllowReserve lets only approved peers hold a slot.
func (a relayACL) AllowReserve(p peer.ID, addr ma.Multiaddr) bool {
	ok := a.allow(p)
	if !ok {
		a.log.Debug("relay reservation refused", "peer", p, "addr", addr)
	}
	return ok
}

// AllowConnect admits a circuit when its destination is approved. The
// destination is the node behind NAT holding the slot; the source may be any
// peer (a phone reaching its own home node through a friend's). The ACL is
// asked again here so that revoking a registration takes effect at the next
// circuit, not when the reservation expires.
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	ok := a.allow(dest)
	if !ok {
		a.log.Debug("relay circuit refused", "src", src, "dest", dest)
	}
	return ok
}

func relayServiceOptions(cfg Config) []relayv2.Option {
	return []relayv2.Option{
		relayv2.WithResources(cfg.RelayLimits.resources()),
		relayv2.WithACL(relayACL{allow: cfg.RelayACL, log: cfg.Logger}),
	}
}

// relaySource merges the static relays and the peer source into one
// autorelay.PeerSource (autorelay accepts only one): static relays first,
// then whatever the source adds. It returns nil when there is neither.
func relaySource(static []peer.AddrInfo, src RelayPeerSource) autorelay.PeerSource {
	if len(static) == 0 && src == nil {
		return nil
	}
	static = append([]peer.AddrInfo(nil), static...)
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, num)
		go func() {
			defer close(out)
			sent := 0
			for _, ai := range static {
				if sent == num {
					return
				}
				out <- ai // buffered for num
				sent++
			}
			if src == nil || sent == num {
				return
			}
			in := src(ctx, num-sent)
			for {
				select {
				case ai, ok := <-in:
					if !ok {
						return
					}
					out <- ai
					if sent++; sent == num {
						// Drain so the source's sender is not stuck.
						go func() {
							for range in {
							}
						}()
						return
					}
				case <-ctx.Done():
					go func() {
						for range in {
						}
					}()
					return
				}
			}
		}()
		return out
	}
}

func autorelayOptions(cfg Config) []autorelay.Option {
	return []autorelay.Option{
		autorelay.WithPeerSource(relaySource(cfg.StaticRelays, cfg.RelayPeerSource)),
		autorelay.WithNumRelays(cfg.Relays),
		autorelay.WithMinCandidates(1),
		autorelay.WithBootDelay(relayBootDelay),
		autorelay.WithBackoff(relayBackoff),
	}
}
