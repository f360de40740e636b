package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
	"github.com/redpanda-p2p/homenode/node/hint"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// Ticket defaults.
const (
	DefaultTicketDays = 90
	// renewBefore: a registration is renewed once it has less than this left.
	renewBefore = time.Hour
)

var (
	chainPrefix     = []byte("chain/")  // + owner identity: a ticket chain rooted at that owner
	advertKeyPrefix = []byte("advert/") // + channel ID: hash of the last advert posted there
	keyOwns         = []byte("owns")    // present once a node registered this client at hop 0
)

// Ticket is a hop-ticket chain this client holds.
type Ticket struct {
	Owner   string    // identity of the node owner the chain starts at
	Hop     int       // this client's hop at that owner's node
	Expires time.Time // when the first ticket of the chain expires
	Chain   string    // the chain string (`redpanda ticket set` takes it)
}

// setTicket implements Tickets.Set.
func (c *Client) setTicket(chainString string) (Ticket, error) {
	ch, h, err := routing.ParseChainHint(chainString)
	if err != nil {
		return Ticket{}, fmt.Errorf("client.Tickets.Set: %w", err)
	}
	if len(ch) == 0 {
		return Ticket{}, fmt.Errorf("client.Tickets.Set: %w: empty chain", routing.ErrMalformed)
	}
	owner := ch[0].Issuer
	// Verify counts the owner as hop 0 whatever it presents, so a chain
	// this client issued to a friend would pass: check the subject first.
	if last := ch[len(ch)-1]; last.Subject != c.self.Public() {
		return Ticket{}, fmt.Errorf("client.Tickets.Set: %w: it names %s, this client is %s", routing.ErrWrongSubject, last.Subject, c.ID())
	}
	if _, err := ch.Verify(owner, c.self.Public(), c.cfg.Now()); err != nil {
		return Ticket{}, fmt.Errorf("client.Tickets.Set: %w", err)
	}
	if err := c.db.Meta(bucketSelf).Put(append(append([]byte{}, chainPrefix...), owner[:]...), []byte(ch.String())); err != nil {
		return Ticket{}, fmt.Errorf("client.Tickets.Set: %w", err)
	}
	c.ticketChanged(owner, ch.String())
	c.addHintedNodes(c.learnHint(h, "ticket"), "ticket")
	c.refreshSoon()
	return chainTicket(ch), nil
}

func chainTicket(ch routing.Chain) Ticket {
	exp := ch[0].NotAfter
	for _, t := range ch {
		if t.NotAfter.Before(exp) {
			exp = t.NotAfter
		}
	}
	return Ticket{Owner: ch[0].Issuer.String(), Hop: ch[len(ch)-1].Hop, Expires: exp, Chain: ch.String()}
}

// tickets implements Tickets.List.
func (c *Client) tickets() ([]Ticket, error) {
	chains, err := c.chains()
	if err != nil {
		return nil, fmt.Errorf("client.Tickets.List: %w", err)
	}
	out := make([]Ticket, 0, len(chains))
	for _, ch := range chains {
		out = append(out, chainTicket(ch))
	}
	return out, nil
}

// chains returns the stored chains, shortest first.
func (c *Client) chains() ([]routing.Chain, error) {
	var out []routing.Chain
	err := c.db.Meta(bucketSelf).ForEach(func(k, v []byte) error {
		if !bytes.HasPrefix(k, chainPrefix) {
			return nil
		}
		ch, err := routing.ParseChain(string(v))
		if err != nil || len(ch) == 0 {
			c.log.Warn("stored ticket chain unreadable; ignored", "err", err)
			return nil
		}
		out = append(out, ch)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) < len(out[j]) })
	return out, err
}

// issueTicket implements Tickets.Issue.
func (c *Client) issueTicket(friend string, days int) (string, error) {
	subject, err := channel.ParseIdentityKey(strings.TrimSpace(friend))
	if err != nil {
		return "", fmt.Errorf("client.Tickets.Issue: friend identity: %w", err)
	}
	if subject == c.self.Public() {
		return "", errors.New("client.Tickets.Issue: that is this client's own identity")
	}
	if days <= 0 {
		days = DefaultTicketDays
	}
	notAfter := c.cfg.Now().Add(time.Duration(days) * 24 * time.Hour)
	var base routing.Chain
	if _, err := c.db.Meta(bucketSelf).Get(keyOwns); err != nil {
		chains, err := c.chains()
		if err != nil {
			return "", fmt.Errorf("client.Tickets.Issue: %w", err)
		}
		if len(chains) > 0 {
			base = chains[0]
		}
	}
	hop := 1
	if len(base) > 0 {
		hop = base[len(base)-1].Hop + 1
		if base[len(base)-1].NotAfter.Before(notAfter) {
			notAfter = base[len(base)-1].NotAfter // a ticket cannot outlive the one it extends
		}
	}
	if hop > routing.MaxHop {
		return "", fmt.Errorf("client.Tickets.Issue: %w: this client is at hop %d, a friend would be at %d", routing.ErrHopTooFar, hop-1, hop)
	}
	t, err := routing.IssueTicket(c.self, subject, hop, notAfter)
	if err != nil {
		return "", fmt.Errorf("client.Tickets.Issue: %w", err)
	}
	// The hint names the nodes the ticket lets the friend register at:
	// those where this client is one hop nearer the owner.
	h := c.homeHint(hint.MaxNodes, shareEntries, func(n Node) bool { return n.Hop == hop-1 })
	return append(append(routing.Chain{}, base...), t).StringWithHint(h), nil
}

// register registers with the best MaxNodes known nodes, in hop order
// (routing.Choose over measured RTT and reported load), trying each
// stored chain and then none (owner, or hop infinity where allowed).
// Nodes that refuse, or do not speak the registration protocol, are
// marked with the reason; the client then falls back to using the best
// known nodes unregistered.
func (c *Client) register(ctx context.Context) error {
	// Rounds started by Connect, a renewal, a notice and a reconnect must
	// not cross: a node refuses a request signed before one it accepted.
	c.regMu.Lock()
	defer c.regMu.Unlock()
	recs, err := c.nodeRecords()
	if err != nil {
		return fmt.Errorf("client.Connect: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	chains, err := c.chains()
	if err != nil {
		return fmt.Errorf("client.Connect: %w", err)
	}
	var cands []routing.Candidate
	for p, r := range recs {
		c.addAddrs(p, r.Addrs)
		c.mu.Lock()
		rtt := c.rtt[p.String()]
		c.mu.Unlock()
		cands = append(cands, routing.Candidate{Advert: routing.Advert{Node: p, Hop: r.Hop}, RTT: rtt,
			Load: routing.Load{Registered: r.Load, Capacity: r.Capacity}})
	}
	chs := c.channelIDs()
	registered := 0
	for _, cand := range routing.Choose(cands, len(cands)) {
		if registered >= c.cfg.MaxNodes {
			_ = c.updateNode(cand.Node, func(r *nodeRecord, _ bool) { r.Registered = false })
			continue
		}
		res, err := c.registerAt(ctx, cand.Node, chains, chs)
		c.recordRegistration(cand.Node, res, err)
		if err == nil {
			registered++
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if registered > 0 {
		c.postAdverts()
		c.handOverStatements(ctx, c.registeredNodes(), chs)
		c.introduce(ctx)
	}
	return nil
}

// recordRegistration keeps the outcome of a registration attempt at p, and
// the connections it was made over: a new connection means a new session,
// and a node that restarted may have lost the registration (see
// reregisterIfReconnected).
//
// Only the node's answer about this client (verdict) ends a registration
// here: a failure to get one (unreachable, rate limited, a command that
// exits while a background round is in flight) says nothing about it, and
// marking the node unregistered then left a joined device listing its
// node as unregistered though the node had registered it.
func (c *Client) recordRegistration(p peer.ID, res routing.Result, err error) {
	_ = c.updateNode(p, func(r *nodeRecord, _ bool) {
		if err != nil {
			if verdict(err) {
				r.Registered = false
			}
			r.LastError = "register: " + err.Error()
			return
		}
		r.Registered = true
		r.LastError, r.Hop, r.Expires = "", res.Hop, res.Expires
		r.Load, r.Capacity = res.Load.Registered, res.Load.Capacity
	})
	if err == nil && res.Hop == 0 {
		_ = c.db.Meta(bucketSelf).Put(keyOwns, []byte(p))
	}
	c.noteRegConns(p)
}

// noteRegConns remembers the connections to p a registration attempt was
// made over.
func (c *Client) noteRegConns(p peer.ID) {
	var ids []string
	for _, cn := range c.h.Network().ConnsToPeer(p) {
		ids = append(ids, cn.ID())
	}
	c.mu.Lock()
	c.regConns[p] = ids
	c.mu.Unlock()
}

// reconnected reports whether p is connected only over connections that
// came up after the last registration attempt there: the session to p was
// re-established (p restarted, or the network dropped).
func (c *Client) reconnected(p peer.ID) bool {
	conns := c.h.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cn := range conns {
		if slices.Contains(c.regConns[p], cn.ID()) {
			return false
		}
	}
	return true
}

// reregisterIfReconnected registers again at p when its session was
// re-established since the last attempt: a node that restarted keeps its
// registrations on disk, but one that lost them (a new data directory, a
// re-pairing, a registry that dropped them) serves this client again only
// once it registers, and nothing else would tell the client.
func (c *Client) reregisterIfReconnected(ctx context.Context, p peer.ID) {
	if !c.reconnected(p) {
		return
	}
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if !c.reconnected(p) { // a round that held the lock registered there
		return
	}
	chains, err := c.chains()
	if err != nil {
		c.log.Warn("registering again after a reconnect", "node", p, "err", err)
		return
	}
	chs := c.channelIDs()
	res, err := c.registerAt(ctx, p, chains, chs)
	if err != nil && !verdict(err) {
		// Busy, failing or gone again: no reason to think the node
		// stopped serving this client. Tried again at the next session.
		_ = c.updateNode(p, func(r *nodeRecord, _ bool) { r.LastError = "register: " + err.Error() })
		c.noteRegConns(p)
		if ctx.Err() == nil {
			c.log.Info("could not register again after a reconnect", "node", p, "err", err)
		}
		return
	}
	c.recordRegistration(p, res, err)
	if err != nil {
		c.log.Warn("registering again after a reconnect refused", "node", p, "err", err)
		return
	}
	c.log.Debug("registered again after a reconnect", "node", p, "hop", res.Hop)
	c.handOverStatements(ctx, []peer.ID{p}, chs)
}

// verdict reports whether a failed registration is the node's answer about
// this client (a refused chain, a full node, a revocation) rather than a
// failure to get one (unreachable, rate limited, the node's own trouble).
func verdict(err error) bool {
	var ref *routing.RefusedError
	if !errors.As(err, &ref) {
		return false
	}
	switch ref.Status {
	case routing.StatusRateLimited, routing.StatusInternal, routing.StatusReplay:
		return false
	}
	return true
}

// registerAt tries the chains, then none, at one node.
func (c *Client) registerAt(ctx context.Context, p peer.ID, chains []routing.Chain, chs []channel.ID) (routing.Result, error) {
	tries := append(append([]routing.Chain{}, chains...), nil)
	var errs []string
	var last error
	recs, _ := c.nodeRecords()
	paced := recs[p].Registered
	for _, ch := range tries {
		res, err := c.registerPaced(ctx, p, ch, chs, paced)
		if err == nil {
			return res, nil
		}
		if ue := c.noteDial(p, err); ue != nil {
			errs = append(errs, ue.Error())
			last = ue
			break
		}
		errs = append(errs, err.Error())
		last = err
		var ref *routing.RefusedError
		if !errors.As(err, &ref) || ref.Status == routing.StatusFull || ref.Status == routing.StatusRateLimited {
			break // not a matter of which chain: unreachable, full or busy
		}
	}
	// The last answer stays an error callers can inspect (verdict).
	if len(errs) == 1 {
		return routing.Result{}, last
	}
	return routing.Result{}, fmt.Errorf("%s; %w", strings.Join(errs[:len(errs)-1], "; "), last)
}

// A node takes a burst of registrations from one device, then one per
// rateLimitPause (routing.DefaultRequestBurst and
// DefaultRequestsPerMinute). Every one-shot command registers, so a
// person running a handful of commands in a row (a script, a pasted block
// of the README) reaches the limit: a refused registration would leave
// the node without the channel a `channel join` just added, and unaware
// of the friend node it should meet. So a rate-limited request to a node
// that registered this client is sent again after the pause, at most
// rateLimitRetries times. Not to other nodes: a friend's node that
// refuses this client ("not allowed") would only make every command wait.
const (
	rateLimitPause   = 2 * time.Second
	rateLimitRetries = 3
)

// registerPaced is one registration request at p, sent again while the
// node says it is rate limited, if paced.
func (c *Client) registerPaced(ctx context.Context, p peer.ID, ch routing.Chain, chs []channel.ID, paced bool) (routing.Result, error) {
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := routing.Register(rctx, c.h, p, c.self, ch, chs)
		cancel()
		var ref *routing.RefusedError
		if err == nil || !paced || try == rateLimitRetries || !errors.As(err, &ref) || ref.Status != routing.StatusRateLimited {
			return res, err
		}
		c.log.Debug("registration rate limited; trying again", "node", p, "in", rateLimitPause)
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(rateLimitPause):
		}
	}
}

// onNotice records that a node ended this client's registration and, if
// the client is online, registers again so another node takes its place.
func (c *Client) onNotice(n routing.Notice) {
	c.log.Warn("registration ended by node", "node", n.Node, "status", n.Status.String(), "detail", n.Detail)
	_ = c.updateNode(n.Node, func(r *nodeRecord, _ bool) {
		r.Registered = false
		r.LastError = fmt.Sprintf("%s: %s", n.Status, n.Detail)
	})
	c.emit(Event{Kind: EventRegistrationEnded, Node: n.Node.String(), Detail: fmt.Sprintf("%s: %s", n.Status, n.Detail)})
	c.mu.Lock()
	online := c.dialing && !c.closed
	if online {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if online {
		go func() {
			defer c.wg.Done()
			if err := c.register(c.ctx); err != nil && c.ctx.Err() == nil {
				c.log.Warn("registering after a notice", "err", err)
			}
		}()
	}
}

// renewDue reports whether a registration is about to lapse.
func (c *Client) renewDue() bool {
	recs, err := c.nodeRecords()
	if err != nil {
		return false
	}
	for _, r := range recs {
		if r.Registered && !r.Expires.IsZero() && c.cfg.Now().Add(renewBefore).After(r.Expires) {
			return true
		}
	}
	return false
}

// postAdverts tells the members of every writable channel which nodes
// this client is registered with, when that changed since the last post.
func (c *Client) postAdverts() {
	recs, err := c.nodeRecords()
	if err != nil {
		return
	}
	var as []routing.Advert
	for p, r := range recs {
		if !r.Registered {
			continue
		}
		a := routing.Advert{Node: p, Hop: r.Hop}
		for _, s := range r.Addrs {
			if ma, err := multiaddr.NewMultiaddr(s); err == nil {
				a.Addrs = append(a.Addrs, ma)
			}
		}
		as = append(as, a)
	}
	if len(as) == 0 {
		return
	}
	sort.Slice(as, func(i, j int) bool { return as[i].Node < as[j].Node })
	body := append([]byte{control.Adverts}, routing.EncodeAdverts(as)...)
	sum := sha256.Sum256(body)
	c.mu.Lock()
	chans := make([]*chanState, 0, len(c.chans))
	for _, cs := range c.chans {
		if cs.key.CanWrite() {
			chans = append(chans, cs)
		}
	}
	c.mu.Unlock()
	meta := c.db.Meta(bucketSelf)
	for _, cs := range chans {
		id := cs.key.ID()
		k := append(append([]byte{}, advertKeyPrefix...), id[:]...)
		if old, _ := meta.Get(k); bytes.Equal(old, sum[:]) {
			continue
		}
		// Stored now; the outbox delivers it.
		if _, err := c.postLater(cs, channel.KindControl, body); err != nil {
			if !errors.Is(err, ErrClosed) {
				c.log.Warn("advert not posted", "channel", cs.name, "err", err)
			}
			continue
		}
		_ = meta.Put(k, sum[:])
	}
}

// handleAdverts learns super nodes from a member's adverts
// (control.Adverts): through the poster, a node is one hop further than
// the poster is. Called under procMu (control.go).
func (c *Client) handleAdverts(cs *chanState, m *channel.Message) {
	if m.Author == c.self.Public() {
		return
	}
	as, err := routing.DecodeAdverts(m.Body[1:])
	if err != nil {
		c.log.Warn("bad advert ignored", "channel", cs.name, "author", m.Author, "err", err)
		return
	}
	for _, a := range as {
		if a.Node == c.h.ID() || a.Node == "" {
			continue
		}
		hop := routing.AdvertHop(a)
		addrs := make([]string, 0, len(a.Addrs))
		for _, ma := range a.Addrs {
			addrs = append(addrs, ma.String())
		}
		// Called under procMu (from process), so the record update takes
		// the lock-free path.
		err := c.updateNodeLocked(a.Node, func(r *nodeRecord, existed bool) {
			if !existed {
				r.Hop, r.Source = hop, "advert"
			} else if !r.Registered && hopRank(hop) < hopRank(r.Hop) {
				r.Hop = hop
			}
			r.Addrs = mergeAddrs(r.Addrs, addrs)
		})
		if err != nil {
			c.log.Warn("advert: node record", "err", err)
		}
		// A member's node is a node this client's own nodes should know.
		c.rememberNode(a.Node, a.Addrs, "advert", []channel.ID{cs.key.ID()})
	}
	if len(as) > 0 {
		c.introduceSoon()
	}
}
