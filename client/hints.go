package client

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/hint"
)

// Node hints (docs/DHT.md, "Friend nodes"): whatever this client hands a
// friend to share a channel carries a compact hint of where its home node
// is (key strings, invitations and their answers, hop tickets, device
// links), and every node this client learns — from such a hint, from an
// advert it read, or a node it registered at — is introduced to its own
// home nodes (discovery.IntroduceProtocol), which dial it, prove the
// shared channels and keep it. So two friends' home nodes find each other
// through the friends, with no central list.
const (
	bucketHints = "hints" // node peer ID -> hintRecord
	// maxHints bounds the nodes remembered for introducing; the oldest
	// learned go first.
	maxHints = 64
	// shareEntries is how many address entries (TCP and QUIC on one
	// address are one) a hint in a key string or an invitation carries:
	// with one, a full key string with a hint still fits a version-5 QR
	// code at error correction L.
	shareEntries = 2
	// reintroduce: a node is introduced again this often, so that home
	// nodes keep friends that are still in use (UnprovenFriendLifetime).
	reintroduce      = 24 * time.Hour
	introduceTimeout = 20 * time.Second
)

type hintRecord struct {
	Addrs      []string             `json:"addrs,omitempty"`
	Channels   []string             `json:"channels,omitempty"`   // channel IDs (hex), newest first
	Source     string               `json:"source"`               // key, invitation, answer, ticket, link, advert, node
	Learned    time.Time            `json:"learned"`              // last changed
	Introduced map[string]time.Time `json:"introduced,omitempty"` // own node peer ID -> when it accepted
	Refused    map[string]time.Time `json:"refused,omitempty"`    // own node peer ID -> when it did not
}

// hintState is the client's run-time state for hints.
type hintState struct {
	mu      sync.Mutex // read-modify-write of the hints bucket
	introMu sync.Mutex // one introduction round at a time
	refresh soon
	intro   soon
}

// soon is a background job that runs once at a time; asked again while
// it runs, it runs once more.
type soon struct{ running, again bool }

// runSoon runs fn in the background if the client is online (it keeps
// its nodes connected).
func (c *Client) runSoon(s *soon, fn func(context.Context)) {
	c.mu.Lock()
	if !c.dialing || c.closed {
		c.mu.Unlock()
		return
	}
	if s.running {
		s.again = true
		c.mu.Unlock()
		return
	}
	s.running = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		for {
			fn(c.ctx)
			c.mu.Lock()
			if !s.again || c.closed {
				s.running = false
				c.mu.Unlock()
				return
			}
			s.again = false
			c.mu.Unlock()
		}
	}()
}

// refreshSoon registers again with the current channels (which hands
// over the statements of new channels and introduces new nodes), in the
// background, when the client is online.
func (c *Client) refreshSoon() {
	c.runSoon(&c.hints.refresh, func(ctx context.Context) {
		if err := c.register(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("updating nodes", "err", err)
		}
	})
}

func (c *Client) introduceSoon() {
	c.runSoon(&c.hints.intro, c.introduce)
}

// updateNodes implements Nodes.Update.
func (c *Client) updateNodes(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	return c.register(ctx)
}

// nodeAddrs are the addresses of node p this client knows: its record's
// and what the host learned from p itself (identify).
func (c *Client) nodeAddrs(p peer.ID, rec []string) []multiaddr.Multiaddr {
	var out []multiaddr.Multiaddr
	for _, s := range rec {
		if ma, err := multiaddr.NewMultiaddr(s); err == nil {
			out = append(out, ma)
		}
	}
	return append(out, c.h.Peerstore().Addrs(p)...)
}

// homeHint is the hint of this client's home nodes: up to maxNodes of the
// nodes keep says yes to, best first (as Nodes orders them), each with at
// most entries address entries. Nil when there is none.
func (c *Client) homeHint(maxNodes, entries int, keep func(Node) bool) []byte {
	ns, err := c.nodes()
	if err != nil {
		return nil
	}
	var hs []hint.Node
	for _, n := range ns {
		if len(hs) == maxNodes {
			break
		}
		if !n.Registered || !keep(n) {
			continue
		}
		p, err := peer.Decode(n.ID)
		if err != nil {
			continue
		}
		h, err := hint.Pick(p, c.nodeAddrs(p, n.Addrs), entries)
		if err != nil {
			continue
		}
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		return nil
	}
	b, err := hint.Encode(hs)
	if err != nil {
		c.log.Warn("cannot make a node hint", "err", err)
		return nil
	}
	return b
}

func anyNode(Node) bool { return true }

// shareHint is what a key string or an invitation carries: the best home
// node, shareEntries address entries.
func (c *Client) shareHint() []byte { return c.homeHint(1, shareEntries, anyNode) }

// learnHint remembers the nodes of a hint someone handed this client,
// with the channels it came with, and introduces them to its home nodes.
// A hint that does not decode is logged and ignored: the key or ticket it
// came with is still good.
func (c *Client) learnHint(raw []byte, source string, chs ...channel.ID) []hint.Node {
	if len(raw) == 0 {
		return nil
	}
	nodes, err := hint.Decode(raw)
	if err != nil {
		c.log.Warn("node hint ignored", "source", source, "err", err)
		return nil
	}
	for _, n := range nodes {
		c.rememberNode(n.ID, n.Addrs, source, chs)
	}
	c.introduceSoon()
	return nodes
}

// rememberNode adds or updates a hint record. It reports whether the
// record changed.
func (c *Client) rememberNode(p peer.ID, addrs []multiaddr.Multiaddr, source string, chs []channel.ID) bool {
	if p == "" || p == c.h.ID() {
		return false
	}
	c.hints.mu.Lock()
	defer c.hints.mu.Unlock()
	m := c.db.Meta(bucketHints)
	var r hintRecord
	v, err := m.Get([]byte(p))
	existed := err == nil && json.Unmarshal(v, &r) == nil
	if !existed {
		r = hintRecord{Source: source}
		c.evictHintsLocked()
	}
	var as []string
	for _, a := range addrs {
		as = append(as, a.String())
	}
	// Changed means news: a new address or channel, not another order.
	changed := !existed
	for _, a := range as {
		if !slices.Contains(r.Addrs, a) {
			changed = true
		}
	}
	if changed {
		r.Addrs = mergeAddrs(as, r.Addrs)
	}
	for _, ch := range chs {
		id := ch.String()
		if !slices.Contains(r.Channels, id) {
			r.Channels = append([]string{id}, r.Channels...)
			changed = true
		}
	}
	if len(r.Channels) > discovery.MaxIntroChannels {
		r.Channels = r.Channels[:discovery.MaxIntroChannels]
	}
	if !changed {
		return false
	}
	if source != "node" || r.Source == "" {
		r.Source = source
	}
	r.Learned = c.cfg.Now()
	b, _ := json.Marshal(r)
	if err := m.Put([]byte(p), b); err != nil {
		c.log.Warn("node hint record", "node", p, "err", err)
		return false
	}
	return true
}

// evictHintsLocked makes room for one more record.
func (c *Client) evictHintsLocked() {
	recs := c.hintRecords()
	if len(recs) < maxHints {
		return
	}
	var oldest peer.ID
	var at time.Time
	for p, r := range recs {
		if oldest == "" || r.Learned.Before(at) {
			oldest, at = p, r.Learned
		}
	}
	_ = c.db.Meta(bucketHints).Delete([]byte(oldest))
}

func (c *Client) hintRecords() map[peer.ID]hintRecord {
	out := map[peer.ID]hintRecord{}
	_ = c.db.Meta(bucketHints).ForEach(func(k, v []byte) error {
		p, err := peer.IDFromBytes(k)
		if err != nil {
			return nil
		}
		var r hintRecord
		if json.Unmarshal(v, &r) == nil {
			out[p] = r
		}
		return nil
	})
	return out
}

// due reports whether r should be introduced to own node n now.
func (r hintRecord) due(n string, now time.Time) bool {
	if t, ok := r.Refused[n]; ok && now.Sub(t) < statementRetry {
		return false
	}
	t, ok := r.Introduced[n]
	return !ok || t.Before(r.Learned) || now.Sub(t) >= reintroduce
}

// noteOwnNodes records the nodes this client is registered at as nodes to
// introduce to each other (its home node and, say, a friend's node it is
// registered at serve the same channels), with the channels they serve
// for it, and refreshes their addresses from what they told the host.
func (c *Client) noteOwnNodes() {
	recs, err := c.nodeRecords()
	if err != nil {
		return
	}
	var chs []channel.ID
	for _, k := range c.writableKeys() {
		chs = append(chs, k.ID())
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i].String() < chs[j].String() })
	if len(chs) > discovery.MaxIntroChannels {
		chs = chs[:discovery.MaxIntroChannels]
	}
	for p, r := range recs {
		if !r.Registered {
			continue
		}
		h, err := hint.Pick(p, c.nodeAddrs(p, r.Addrs), hint.MaxEntries)
		if err != nil {
			continue
		}
		c.rememberNode(p, h.Addrs, "node", chs)
		var as []string
		for _, a := range h.Addrs {
			as = append(as, a.String())
		}
		if merged := mergeAddrs(r.Addrs, as); len(merged) != len(r.Addrs) {
			_ = c.updateNode(p, func(r *nodeRecord, _ bool) { r.Addrs = mergeAddrs(r.Addrs, as) })
		}
	}
}

// introduce tells every registered node about the known nodes that are
// due. Refusals and failures are retried later (statementRetry).
func (c *Client) introduce(ctx context.Context) {
	c.hints.introMu.Lock()
	defer c.hints.introMu.Unlock()
	c.noteOwnNodes()
	now := c.cfg.Now()
	recs := c.hintRecords()
	for _, own := range c.registeredNodes() {
		var batch []discovery.Introduction
		var ids []peer.ID
		for p, r := range recs {
			if p == own || !r.due(own.String(), now) {
				continue
			}
			in := discovery.Introduction{Node: peer.AddrInfo{ID: p}}
			for _, a := range r.Addrs {
				if ma, err := multiaddr.NewMultiaddr(a); err == nil {
					in.Node.Addrs = append(in.Node.Addrs, ma)
				}
			}
			for _, s := range r.Channels {
				if ch, err := channel.ParseID(s); err == nil {
					in.Channels = append(in.Channels, ch)
				}
			}
			batch = append(batch, in)
			ids = append(ids, p)
		}
		for len(batch) > 0 {
			n := min(len(batch), discovery.MaxIntroductionsPerFrame)
			c.introduceBatch(ctx, own, batch[:n], ids[:n], now)
			batch, ids = batch[n:], ids[n:]
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (c *Client) introduceBatch(ctx context.Context, own peer.ID, batch []discovery.Introduction, ids []peer.ID, now time.Time) {
	ictx, cancel := context.WithTimeout(ctx, introduceTimeout)
	vs, err := discovery.Introduce(ictx, c.h, own, batch)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		c.log.Info("nodes not introduced (does the node take introductions?)", "node", own, "count", len(batch), "err", err)
		vs = make([]discovery.Verdict, len(batch))
		for i := range vs {
			vs[i] = discovery.IntroRefused
		}
	}
	c.hints.mu.Lock()
	defer c.hints.mu.Unlock()
	m := c.db.Meta(bucketHints)
	accepted := 0
	for i, p := range ids {
		var r hintRecord
		v, err := m.Get([]byte(p))
		if err != nil || json.Unmarshal(v, &r) != nil {
			continue
		}
		if vs[i] == discovery.IntroAccepted {
			if r.Introduced == nil {
				r.Introduced = map[string]time.Time{}
			}
			r.Introduced[own.String()] = now
			delete(r.Refused, own.String())
			accepted++
		} else {
			if r.Refused == nil {
				r.Refused = map[string]time.Time{}
			}
			r.Refused[own.String()] = now
			if err == nil {
				c.log.Info("node introduction refused", "node", own, "introduced", p, "verdict", vs[i].String())
			}
		}
		b, _ := json.Marshal(r)
		_ = m.Put([]byte(p), b)
	}
	if accepted > 0 {
		c.log.Debug("nodes introduced", "node", own, "count", accepted)
	}
}

// introductionsDue reports whether a known node waits to be introduced to
// a registered node.
func (c *Client) introductionsDue() bool {
	now := c.cfg.Now()
	recs := c.hintRecords()
	for _, own := range c.registeredNodes() {
		for p, r := range recs {
			if p != own && r.due(own.String(), now) {
				return true
			}
		}
	}
	return false
}

// addHintedNodes makes the nodes of a hint nodes this client may register
// at (a ticket's or a device link's: that is what they are for).
func (c *Client) addHintedNodes(nodes []hint.Node, source string) {
	for _, n := range nodes {
		if n.ID == c.h.ID() {
			continue
		}
		var as []string
		for _, a := range n.Addrs {
			as = append(as, a.String())
		}
		err := c.updateNode(n.ID, func(r *nodeRecord, existed bool) {
			if !existed {
				r.Hop, r.Source = HopUnknown, source
			}
			r.Addrs = mergeAddrs(as, r.Addrs)
		})
		if err != nil {
			c.log.Warn("node from a hint", "node", n.ID, "err", err)
		}
	}
}
