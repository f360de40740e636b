package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/store"
)

// HopUnknown is the hop of a node the client knows no ticket chain for
// (added by hand, or not yet registered): "hop infinity".
const HopUnknown = -1

// Node is a super node the client knows.
type Node struct {
	ID         string        // peer ID
	Addrs      []string      // multiaddrs without /p2p
	Hop        int           // this client's hop to the node; HopUnknown when not known
	Source     string        // "manual" or "advert"
	Registered bool          // the node accepted this client's registration
	Expires    time.Time     // when the registration ends unless renewed
	Load       int           // registrations the node serves (its load)
	Capacity   int           // load: registrations the node can serve
	RTT        time.Duration // last measured round trip; 0 when not measured
	Connected  bool          // a connection is up now
	LastError  string        // why the last registration or dial failed
}

type nodeRecord struct {
	Addrs      []string  `json:"addrs"`
	Hop        int       `json:"hop"`
	Source     string    `json:"source"`
	Registered bool      `json:"registered,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
	Load       int       `json:"load,omitempty"`
	Capacity   int       `json:"capacity,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
}

// addNode implements Nodes.Add.
func (c *Client) addNode(addr string) (string, error) {
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("client.Nodes.Add: %q is not a multiaddr: %w", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma)
	if err != nil {
		return "", fmt.Errorf("client.Nodes.Add: %q must end in /p2p/PEER-ID (as `homenode run` prints it): %w", addr, err)
	}
	if ai.ID == c.h.ID() {
		return "", fmt.Errorf("client.Nodes.Add: %s is this client itself", ai.ID)
	}
	addrs := make([]string, len(ai.Addrs))
	for i, a := range ai.Addrs {
		addrs[i] = a.String()
	}
	err = c.updateNode(ai.ID, func(r *nodeRecord, existed bool) {
		if !existed {
			r.Hop, r.Source = HopUnknown, "manual"
		}
		r.Addrs = mergeAddrs(addrs, r.Addrs)
	})
	if err != nil {
		return "", fmt.Errorf("client.Nodes.Add: %w", err)
	}
	c.nodeChanged(ai.ID)
	return ai.ID.String(), nil
}

// ErrUnknownNode: no super node of that peer ID is known.
var ErrUnknownNode = errors.New("client: unknown super node")

// removeNode implements Nodes.Remove.
func (c *Client) removeNode(id string) error {
	p, err := peer.Decode(id)
	if err != nil {
		ai, merr := peer.AddrInfoFromString(id)
		if merr != nil {
			return fmt.Errorf("client.Nodes.Remove: %q is neither a peer ID nor a multiaddr ending in /p2p/PEER-ID: %w", id, err)
		}
		p = ai.ID
	}
	c.procMu.Lock()
	_, err = c.db.Meta(bucketNodes).Get([]byte(p))
	if err == nil {
		err = c.dropNodeLocked(p)
	}
	c.procMu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("client.Nodes.Remove: %w: %s (`redpanda nodes` lists the known ones)", ErrUnknownNode, p)
	}
	if err != nil {
		return fmt.Errorf("client.Nodes.Remove: %w", err)
	}
	c.nodeChanged(p)
	return nil
}

func mergeAddrs(first, rest []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range append(append([]string{}, first...), rest...) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) > 8 { // an advert must not grow a record without bound
		out = out[:8]
	}
	return out
}

// updateNode changes a node record durably.
func (c *Client) updateNode(p peer.ID, fn func(r *nodeRecord, existed bool)) error {
	c.procMu.Lock() // records are read-modify-written from several goroutines
	defer c.procMu.Unlock()
	return c.updateNodeLocked(p, fn)
}

func (c *Client) updateNodeLocked(p peer.ID, fn func(r *nodeRecord, existed bool)) error {
	m := c.db.Meta(bucketNodes)
	var r nodeRecord
	v, err := m.Get([]byte(p))
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if existed {
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("node record %s: %w", p, err)
		}
	}
	fn(&r, existed)
	b, _ := json.Marshal(r)
	return m.Put([]byte(p), b)
}

func (c *Client) nodeRecords() (map[peer.ID]nodeRecord, error) {
	out := map[peer.ID]nodeRecord{}
	err := c.db.Meta(bucketNodes).ForEach(func(k, v []byte) error {
		p, err := peer.IDFromBytes(k)
		if err != nil {
			return nil
		}
		var r nodeRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil
		}
		out[p] = r
		return nil
	})
	return out, err
}

// nodes implements Nodes.List.
func (c *Client) nodes() ([]Node, error) {
	recs, err := c.nodeRecords()
	if err != nil {
		return nil, fmt.Errorf("client.Nodes.List: %w", err)
	}
	out := make([]Node, 0, len(recs))
	c.mu.Lock()
	for p, r := range recs {
		out = append(out, Node{ID: p.String(), Addrs: r.Addrs, Hop: r.Hop, Source: r.Source, Registered: r.Registered,
			Expires: r.Expires, Load: r.Load, Capacity: r.Capacity, RTT: c.rtt[p.String()],
			Connected: len(c.h.Network().ConnsToPeer(p)) > 0, LastError: r.LastError})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return betterNode(out[i], out[j]) })
	return out, nil
}

func hopRank(h int) int {
	if h < 0 {
		return 1 << 30
	}
	return h
}

func betterNode(a, b Node) bool {
	if a.Registered != b.Registered {
		return a.Registered
	}
	if hopRank(a.Hop) != hopRank(b.Hop) {
		return hopRank(a.Hop) < hopRank(b.Hop)
	}
	if (a.RTT == 0) != (b.RTT == 0) {
		return a.RTT != 0
	}
	if a.RTT != b.RTT {
		return a.RTT < b.RTT
	}
	return a.ID < b.ID
}

// activeNodes are the nodes the client talks to: the registered ones, or
// while none is, the best MaxNodes known.
func (c *Client) activeNodes() []peer.ID {
	ns, err := c.nodes()
	if err != nil {
		return nil
	}
	var reg, all []peer.ID
	for _, n := range ns {
		p, err := peer.Decode(n.ID)
		if err != nil {
			continue
		}
		c.addAddrs(p, n.Addrs)
		if n.Registered {
			reg = append(reg, p)
		}
		all = append(all, p)
	}
	if len(reg) > 0 {
		return reg
	}
	return all[:min(len(all), c.cfg.MaxNodes)]
}

func (c *Client) addAddrs(p peer.ID, addrs []string) {
	var mas []multiaddr.Multiaddr
	for _, a := range addrs {
		if ma, err := multiaddr.NewMultiaddr(a); err == nil {
			mas = append(mas, ma)
		}
	}
	c.h.Peerstore().AddAddrs(p, mas, 24*time.Hour)
}

// dial connects to p and measures the round trip.
func (c *Client) dial(ctx context.Context, p peer.ID) error {
	if len(c.h.Network().ConnsToPeer(p)) == 0 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.h.Connect(dctx, peer.AddrInfo{ID: p})
		cancel()
		if err != nil {
			if ue := c.noteDial(p, err); ue != nil {
				return ue
			}
			return err
		}
		c.lastDial.Delete(p)
	}
	p2p.Protect(c.h, p, "redpanda-client-node")
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case r := <-ping.Ping(pctx, c.h, p):
		if r.Error == nil {
			c.mu.Lock()
			c.rtt[p.String()] = r.RTT
			c.mu.Unlock()
		}
	case <-pctx.Done():
	}
	return nil
}

// The redial schedule of an active node whose connection is down: the
// delay doubles from redialMin up to redialMax. The cap bounds how long a
// running app stays deaf once its node is back (redialMax plus the dial
// itself; the issue asks for 5 s), however long the
// node was down; a dial of a node that is down costs one connection
// attempt.
const (
	redialMin = 500 * time.Millisecond
	redialMax = 3 * time.Second
)

// keepConnected redials the active nodes whenever a connection drops,
// with backoff, until the client closes. The sync service resumes on each
// reconnect and reconciliation fetches what was missed; the client
// registers again on each re-established session.
func (c *Client) keepConnected() {
	defer c.wg.Done()
	next := map[peer.ID]time.Time{}
	backoff := map[peer.ID]time.Duration{}
	changed, stop := c.connectionsChanged() // keepalive.go: no polling
	defer stop()
	nextRenew := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(nextRenew) {
			nextRenew = time.Now().Add(30 * time.Second)
			if c.renewDue() || c.statementsDue() {
				if err := c.register(c.ctx); err != nil && c.ctx.Err() == nil {
					c.log.Warn("renewing registrations", "err", err)
				}
			} else if c.introductionsDue() {
				c.introduce(c.ctx)
			}
		}
		for _, p := range c.activeNodes() {
			if len(c.h.Network().ConnsToPeer(p)) == 0 {
				if time.Now().Before(next[p]) {
					continue
				}
				// This loop keeps its own schedule; the swarm's would
				// refuse the node for minutes after a long outage.
				p2p.ClearDialBackoff(c.h, p)
				if err := c.dial(c.ctx, p); err != nil {
					if c.ctx.Err() != nil {
						return
					}
					b := min(max(2*backoff[p], redialMin), redialMax)
					backoff[p], next[p] = b, time.Now().Add(b)
					c.log.Debug("node not reachable", "peer", p, "retry_in", b, "err", err)
					continue
				}
				backoff[p] = 0
			}
			c.keepProbing(p) // a killed node's connection looks alive (probe.go)
			c.reregisterIfReconnected(c.ctx, p)
			if c.ctx.Err() != nil {
				return
			}
		}
		wait := time.NewTimer(redialWait(next, nextRenew))
		select {
		case <-c.ctx.Done():
			wait.Stop()
			return
		case <-changed:
		case <-wait.C:
		}
		wait.Stop()
	}
}

// startDialing starts keepConnected once.
func (c *Client) startDialing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dialing || c.closed {
		return
	}
	c.dialing = true
	c.wg.Add(1)
	go c.keepConnected()
}

// peers implements Nodes.Connected.
func (c *Client) peers() []string {
	var out []string
	for _, p := range c.svc.Peers() {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

// probeNodes implements Nodes.Probe.
func (c *Client) probeNodes(ctx context.Context) error {
	recs, err := c.nodeRecords()
	if err != nil {
		return fmt.Errorf("client.Nodes.Probe: %w", err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("client.Nodes.Probe: %w (add one: `redpanda nodes add MULTIADDR`)", ErrNoNodes)
	}
	done := make(chan struct{}, len(recs))
	for p, r := range recs {
		c.addAddrs(p, r.Addrs)
		go func() {
			defer func() { done <- struct{}{} }()
			if err := c.dial(ctx, p); err != nil {
				_ = c.updateNode(p, func(r *nodeRecord, _ bool) { r.LastError = err.Error() })
			}
		}()
	}
	for range recs {
		<-done
	}
	return nil
}
