package sim

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// Port is the UDP port every simulated home node listens on (QUIC v1), as
// the appliance does on its router's mapped port.
const Port = 4001

// natBinding is how long a home router keeps an outbound UDP mapping open
// without traffic; QUIC's 15 s keep-alive holds it open.
const natBinding = 2 * time.Minute

// Link is one home's connection: one-way latency to the core of the
// network, bandwidth each way, and its region (latency between regions is
// added on top).
type Link struct {
	Access   time.Duration // one-way, home to the core
	Region   int
	UpBits   int // bits per second, home upload
	DownBits int // bits per second, home download
	// NAT: the home is behind a router without a port mapping; it can
	// only receive from addresses it sent to within natBinding.
	NAT bool
}

// Network is the simulated internet between the homes: the simnet
// (per-link bandwidth with FQ-CoDel queues, latency per packet) with, in
// front of every endpoint, what simnet lacks: homes switched off, NAT
// (an address-restricted firewall: inbound only from addresses the home
// sent to recently) and splits of the network into parts that cannot
// reach each other. Only the wire is simulated: each home's host is a
// real libp2p host speaking QUIC over it.
type Network struct {
	sn      *simnet.Simnet
	ips     []net.IP
	byIP    map[[4]byte]int
	links   []Link
	regions [][]time.Duration

	epMu sync.Mutex // simnet's NewEndpoint is not safe for concurrent use

	mu        sync.RWMutex
	off       []bool
	part      []int // partition group of each home; nil: no split
	bindings  []map[int]time.Time
	wireStats []wireStats
}

type wireStats struct {
	sentBytes, recvBytes, sentPkts, recvPkts, dropped atomic.Int64
}

// WireStats are bytes and packets on a home's link, QUIC overhead,
// handshakes and keep-alives included.
type WireStats struct {
	SentBytes, RecvBytes, SentPkts, RecvPkts, Dropped int64
}

// NewNetwork lays out n homes: addresses spread over distinct /16s as
// homes of different providers are (the DHT's diversity filter allows 3
// per /16), regions, latencies and bandwidths drawn from rng.
func NewNetwork(rng *rand.Rand, links []Link, regions int) *Network {
	nw := &Network{
		byIP:      map[[4]byte]int{},
		links:     links,
		off:       make([]bool, len(links)),
		bindings:  make([]map[int]time.Time, len(links)),
		wireStats: make([]wireStats, len(links)),
	}
	used16 := map[[2]byte]int{}
	for i := range links {
		var ip [4]byte
		for {
			ip = [4]byte{byte(2 + rng.IntN(96)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}
			if ip[0] == 10 || (ip[0] == 100 && ip[1] >= 64 && ip[1] < 128) || ip[0] == 127 {
				continue
			}
			// Collisions of /16s happen (one provider's block): allow a few.
			if _, dup := nw.byIP[ip]; dup || used16[[2]byte{ip[0], ip[1]}] >= 2 {
				continue
			}
			break
		}
		used16[[2]byte{ip[0], ip[1]}]++
		nw.byIP[ip] = i
		nw.ips = append(nw.ips, net.IPv4(ip[0], ip[1], ip[2], ip[3]).To4())
		if links[i].NAT {
			nw.bindings[i] = map[int]time.Time{}
		}
	}
	nw.regions = make([][]time.Duration, regions)
	for a := range regions {
		nw.regions[a] = make([]time.Duration, regions)
	}
	for a := range regions {
		for b := a + 1; b < regions; b++ {
			d := time.Duration(5+rng.IntN(18)) * time.Millisecond
			nw.regions[a][b], nw.regions[b][a] = d, d
		}
	}
	nw.sn = &simnet.Simnet{
		LatencyFunc: nw.latency,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return nw
}

// Start starts the simnet's goroutines; Close stops them. Both run in the
// synctest bubble.
func (nw *Network) Start() { nw.sn.Start() }

// Close stops the simnet.
func (nw *Network) Close() { nw.sn.Close() }

// Addr is the QUIC listen address of home i.
func (nw *Network) Addr(i int) string {
	return fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", nw.ips[i], Port)
}

// Len is the number of homes.
func (nw *Network) Len() int { return len(nw.links) }

// Link returns home i's link.
func (nw *Network) Link(i int) Link { return nw.links[i] }

// RTT is the round trip between homes a and b without queueing.
func (nw *Network) RTT(a, b int) time.Duration {
	la, lb := nw.links[a], nw.links[b]
	return 2 * (la.Access + lb.Access + nw.regions[la.Region][lb.Region])
}

func (nw *Network) index(a net.Addr) int {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return -1
	}
	ip4 := ua.IP.To4()
	if ip4 == nil {
		return -1
	}
	i, ok := nw.byIP[[4]byte(ip4)]
	if !ok {
		return -1
	}
	return i
}

func (nw *Network) latency(p *simnet.Packet) time.Duration {
	a, b := nw.index(p.From), nw.index(p.To)
	if a < 0 || b < 0 {
		return 50 * time.Millisecond
	}
	return nw.RTT(a, b) / 2
}

// SetOff marks home i switched off (its packets go nowhere) or on.
func (nw *Network) SetOff(i int, off bool) {
	nw.mu.Lock()
	nw.off[i] = off
	if nw.bindings[i] != nil {
		clear(nw.bindings[i]) // a rebooted router forgets its mappings
	}
	nw.mu.Unlock()
}

// Split puts home i in group[i]; homes in different groups cannot reach
// each other. Split(nil) heals the network.
func (nw *Network) Split(group []int) {
	nw.mu.Lock()
	nw.part = group
	nw.mu.Unlock()
}

// canSend reports whether a packet from a to b leaves a's router, and
// opens a's NAT binding towards b.
func (nw *Network) canSend(a, b int) bool {
	if b < 0 {
		return false
	}
	nw.mu.RLock()
	ok := !nw.off[a] && !nw.off[b] && (nw.part == nil || nw.part[a] == nw.part[b])
	nat := nw.bindings[a] != nil
	nw.mu.RUnlock()
	if ok && nat {
		nw.mu.Lock()
		nw.bindings[a][b] = time.Now()
		nw.mu.Unlock()
	}
	return ok
}

// canReceive reports whether a packet from a gets through b's router.
func (nw *Network) canReceive(a, b int) bool {
	nw.mu.RLock()
	defer nw.mu.RUnlock()
	if a < 0 || nw.off[b] || (nw.part != nil && nw.part[a] != nw.part[b]) {
		return false
	}
	if nw.bindings[b] == nil {
		return true
	}
	last, ok := nw.bindings[b][a]
	return ok && time.Since(last) < natBinding
}

// Wire returns home i's link counters.
func (nw *Network) Wire(i int) WireStats {
	w := &nw.wireStats[i]
	return WireStats{
		SentBytes: w.sentBytes.Load(), RecvBytes: w.recvBytes.Load(),
		SentPkts: w.sentPkts.Load(), RecvPkts: w.recvPkts.Load(), Dropped: w.dropped.Load(),
	}
}

// endpoint is home i's UDP socket: a simnet endpoint behind home i's
// router (switch, NAT, split).
type endpoint struct {
	*simnet.SimConn
	nw *Network
	i  int
}

func (e *endpoint) WriteTo(p []byte, addr net.Addr) (int, error) {
	to := e.nw.index(addr)
	if !e.nw.canSend(e.i, to) {
		e.nw.wireStats[e.i].dropped.Add(1)
		return len(p), nil // lost on the way, as on the internet
	}
	n, err := e.SimConn.WriteTo(p, addr)
	if err == nil {
		e.nw.wireStats[e.i].sentBytes.Add(int64(n))
		e.nw.wireStats[e.i].sentPkts.Add(1)
	}
	return n, err
}

func (e *endpoint) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := e.SimConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if !e.nw.canReceive(e.nw.index(addr), e.i) {
			e.nw.wireStats[e.i].dropped.Add(1)
			continue
		}
		e.nw.wireStats[e.i].recvBytes.Add(int64(n))
		e.nw.wireStats[e.i].recvPkts.Add(1)
		return n, addr, nil
	}
}

// sourceIP answers quic-go's question of which source address to use: the
// home's only one.
type sourceIP struct{ ip atomic.Pointer[net.IP] }

func (s *sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) {
	return *s.ip.Load(), nil
}

// QUIC is the libp2p option that puts home i's QUIC transport on the
// simulated network (the construction of x/simlibp2p.QUICSimnet, with the
// home's router in front of its simnet endpoint). A restarted home gets a
// new endpoint at the same address.
func (nw *Network) QUIC(i int) libp2p.Option {
	sel := &sourceIP{}
	l := nw.links[i]
	settings := simnet.NodeBiDiLinkSettings{
		Uplink:   simnet.LinkSettings{BitsPerSecond: l.UpBits},
		Downlink: simnet.LinkSettings{BitsPerSecond: l.DownBits},
	}
	return libp2p.QUICReuse(
		func(lc fx.Lifecycle, srk quic.StatelessResetKey, tk quic.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
			cm, err := quicreuse.NewConnManager(srk, tk, opts...)
			if err != nil {
				return nil, err
			}
			// A conn manager handed to libp2p this way is not closed by it.
			lc.Append(fx.StopHook(cm.Close))
			return cm, nil
		},
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return sel, nil }),
		quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
			if j := nw.index(addr); j != i {
				return nil, fmt.Errorf("sim: home %d cannot listen on %s", i, addr)
			}
			sel.ip.Store(&addr.IP)
			nw.epMu.Lock()
			c := nw.sn.NewEndpoint(addr, settings)
			nw.epMu.Unlock()
			return &endpoint{SimConn: c, nw: nw, i: i}, nil
		}),
	)
}
