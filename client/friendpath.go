package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// Friend paths: Relays for AgreeMultiPath that run over real channels.
// Alice posts a control message (controlFriendPath) in her channel with a
// friend, addressed to Bob's identity with a session ID; the friend's
// client forwards it, once, into a channel it shares with Bob; Bob's
// client hands it to the session. Replies travel back the same way.
//
// Which channel a friend forwards into: the one the session last came
// from for that identity if there is one (so replies retrace the path),
// else a channel whose history holds a text message Bob wrote (a channel
// whose members include Bob as far as the friend can know; keys are
// shared out of band, so authorship is the only membership evidence).
//
// Loops: a frame carries a hop (0 from the sender, 1 from the friend);
// only hop 0 is ever forwarded, never into the channel it came from, and
// never to its own author. Frames of an unknown session are kept briefly
// (a bounded few, for a responder about to wait) and then ignored; frames,
// sessions and forwards per author are bounded.

const (
	friendPathVersion   = control.FriendPathVersion
	friendSessionSize   = control.FriendSessionSize
	maxFriendPayload    = control.MaxFriendPayload
	maxFriendSessions   = 16 // open sessions per client
	friendInboxSize     = 8  // queued messages per path; more are dropped
	friendForwardBurst  = 32 // forwards per author per friendForwardWindow
	friendForwardWindow = time.Minute
	friendRouteTTL      = 10 * time.Minute
	// acceptGrace: once a responder saw the first path of a session, how
	// long it waits for the others before running with what came.
	acceptGrace = 3 * time.Second
	// Frames of a session nobody waits for yet are kept this long, at
	// most maxEarlyFrames of them, so that a responder who starts
	// waiting a moment after the initiator (or catches up from a node)
	// still gets them.
	earlyTTL       = 2 * time.Minute
	maxEarlyFrames = 32
)

// ErrBadFriendFrame: a friend-path control message does not parse.
var ErrBadFriendFrame = errors.New("client: bad friend-path frame")

// friendFrame is one friend-path control message (node/control).
type friendFrame = control.FriendFrame

// decodeFriendFrame parses a control body that starts with
// control.FriendPath.
func decodeFriendFrame(b []byte) (friendFrame, error) {
	f, err := control.DecodeFriendFrame(b)
	if err != nil {
		return f, fmt.Errorf("%w: %w", ErrBadFriendFrame, err)
	}
	return f, nil
}

// friendRelay is one path of a session: the channel with one friend.
type friendRelay struct {
	c       *Client
	cs      *chanState
	peer    channel.IdentityKey
	session [friendSessionSize]byte
	paths   byte
	in      chan []byte
	sent    atomic.Uint32   // frames sent: the next one's seq
	next    byte            // receiving: the seq delivered next (under friendState.mu)
	pending map[byte][]byte // receiving: frames that came early (under friendState.mu)
}

// Send posts msg in the channel with the friend, for the friend to forward.
func (r *friendRelay) Send(ctx context.Context, msg []byte) error {
	if len(msg) > maxFriendPayload {
		return fmt.Errorf("%w: payload of %d bytes", ErrBadFriendFrame, len(msg))
	}
	n := r.sent.Add(1) - 1
	if n > 255 {
		return fmt.Errorf("%w: more than 256 frames on one path", ErrBadFriendFrame)
	}
	f := friendFrame{Hop: 0, Paths: r.paths, Seq: byte(n), To: r.peer, From: r.c.self.Public(), Session: r.session, Payload: msg}
	_, err := r.c.post(ctx, r.cs, channel.KindControl, f.Encode())
	return err
}

// Receive returns the next message the friend forwarded from the peer.
func (r *friendRelay) Receive(ctx context.Context) ([]byte, error) {
	select {
	case m := <-r.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.c.ctx.Done():
		return nil, ErrClosed
	}
}

type friendSession struct {
	peer      channel.IdentityKey
	paths     byte
	accepting bool // responder side: paths are added as frames arrive
	relays    map[channel.ID]*friendRelay
	order     []*friendRelay
	arrived   chan struct{} // accepting: pulsed when a path is added
}

type earlyFrame struct {
	cs   *chanState
	f    friendFrame
	seen time.Time
}

type friendRoute struct {
	ch   channel.ID
	seen time.Time
}

// friendState is a client's friend-path state, kept beside the Client
// (so the Client struct stays as it is) and dropped when it closes.
type friendState struct {
	mu        sync.Mutex
	sessions  map[[friendSessionSize]byte]*friendSession
	acceptors map[channel.IdentityKey]chan [friendSessionSize]byte
	routes    map[string]friendRoute // session||identity -> channel it came from
	rate      map[channel.IdentityKey][]time.Time
	early     []earlyFrame
	// tamper, when set (tests only), rewrites every payload this client
	// forwards toward an identity: a malicious friend.
	tamper func(toward channel.IdentityKey, payload []byte) []byte
}

var friendStates sync.Map // *Client -> *friendState

func (c *Client) friends() *friendState {
	if v, ok := friendStates.Load(c); ok {
		return v.(*friendState)
	}
	st := &friendState{sessions: map[[friendSessionSize]byte]*friendSession{},
		acceptors: map[channel.IdentityKey]chan [friendSessionSize]byte{},
		routes:    map[string]friendRoute{}, rate: map[channel.IdentityKey][]time.Time{}}
	v, loaded := friendStates.LoadOrStore(c, st)
	if !loaded {
		go func() { <-c.ctx.Done(); friendStates.Delete(c) }()
	}
	return v.(*friendState)
}

// friendPaths implements Friends.Paths.
func (c *Client) friendPaths(peer string, via []string) ([]Relay, func(), error) {
	to, err := channel.ParseIdentityKey(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("client.Friends.Paths: %w", err)
	}
	if to == c.self.Public() {
		return nil, nil, fmt.Errorf("client.Friends.Paths: the peer is this client")
	}
	if len(via) == 0 || len(via) > MaxPaths {
		return nil, nil, fmt.Errorf("client.Friends.Paths: %d channels, want 1 to %d", len(via), MaxPaths)
	}
	var sid [friendSessionSize]byte
	_, _ = rand.Read(sid[:])
	s := &friendSession{peer: to, paths: byte(len(via)), relays: map[channel.ID]*friendRelay{}}
	for _, name := range via {
		cs, err := c.byName(name)
		if err != nil {
			return nil, nil, fmt.Errorf("client.Friends.Paths: %w", err)
		}
		if !cs.key.CanWrite() || !cs.key.CanRead() {
			return nil, nil, fmt.Errorf("client.Friends.Paths: %q: %w", name, ErrCannotWrite)
		}
		if s.relays[cs.key.ID()] != nil {
			return nil, nil, fmt.Errorf("client.Friends.Paths: channel %q named twice", name)
		}
		r := &friendRelay{c: c, cs: cs, peer: to, session: sid, paths: s.paths, in: make(chan []byte, friendInboxSize)}
		s.relays[cs.key.ID()] = r
		s.order = append(s.order, r)
	}
	st := c.friends()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sessions) >= maxFriendSessions {
		return nil, nil, fmt.Errorf("client.Friends.Paths: %d sessions open already", len(st.sessions))
	}
	st.sessions[sid] = s
	relays := make([]Relay, len(s.order))
	for i, r := range s.order {
		relays[i] = r
	}
	return relays, func() { st.mu.Lock(); delete(st.sessions, sid); st.mu.Unlock() }, nil
}

// agreeViaFriends implements Friends.Agree.
func (c *Client) agreeViaFriends(ctx context.Context, name, peer string, via []string) (*Agreement, error) {
	relays, done, err := c.friendPaths(peer, via)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.agreeThroughFriends(ctx, name, Initiator, relays)
}

// acceptViaFriends implements Friends.Accept.
func (c *Client) acceptViaFriends(ctx context.Context, name, peer string) (*Agreement, error) {
	relays, done, err := c.acceptFriendPaths(ctx, peer)
	if err != nil {
		return nil, err
	}
	defer done()
	return c.agreeThroughFriends(ctx, name, Responder, relays)
}

// acceptFriendPaths implements Friends.AcceptPaths.
func (c *Client) acceptFriendPaths(ctx context.Context, peer string) ([]Relay, func(), error) {
	from, err := channel.ParseIdentityKey(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("client.Friends.AcceptPaths: %w", err)
	}
	st := c.friends()
	started := make(chan [friendSessionSize]byte, 1)
	st.mu.Lock()
	if st.acceptors[from] != nil {
		st.mu.Unlock()
		return nil, nil, fmt.Errorf("client.Friends.AcceptPaths: already waiting for %s", peer)
	}
	st.acceptors[from] = started
	var replay []earlyFrame
	kept := st.early[:0]
	for _, e := range st.early {
		switch {
		case e.f.From == from && c.cfg.Now().Sub(e.seen) < earlyTTL:
			replay = append(replay, e)
		case c.cfg.Now().Sub(e.seen) < earlyTTL:
			kept = append(kept, e)
		}
	}
	st.early = kept
	for _, e := range replay {
		c.deliverFriendLocked(st, e.cs, e.f)
	}
	st.mu.Unlock()
	var sid [friendSessionSize]byte
	select {
	case sid = <-started:
	case <-ctx.Done():
		st.mu.Lock()
		if st.acceptors[from] == started {
			delete(st.acceptors, from)
		}
		st.mu.Unlock()
		return nil, nil, fmt.Errorf("client.Friends.AcceptPaths: %w", ctx.Err())
	}
	done := func() { st.mu.Lock(); delete(st.sessions, sid); st.mu.Unlock() }
	st.mu.Lock()
	s := st.sessions[sid]
	st.mu.Unlock()
	grace := time.NewTimer(acceptGrace)
	defer grace.Stop()
wait:
	for {
		st.mu.Lock()
		n := len(s.order)
		st.mu.Unlock()
		if n >= int(s.paths) {
			break
		}
		select {
		case <-s.arrived:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			done()
			return nil, nil, fmt.Errorf("client.Friends.AcceptPaths: %w", ctx.Err())
		}
	}
	st.mu.Lock()
	s.accepting = false // the set of paths is fixed from here on
	relays := make([]Relay, len(s.order))
	for i, r := range s.order {
		relays[i] = r
	}
	st.mu.Unlock()
	return relays, done, nil
}

// handleFriendPath takes a friend-path frame (control.FriendPath): it
// forwards hop-0 frames for others and delivers hop-1 frames for this
// client. Called under procMu (control.go), so posting happens in the
// background.
func (c *Client) handleFriendPath(cs *chanState, m *channel.Message) {
	if m.Author == c.self.Public() {
		return
	}
	f, err := decodeFriendFrame(m.Body)
	if err != nil {
		c.log.Warn("friend path: bad frame ignored", "channel", cs.name, "author", m.Author, "err", err)
		return
	}
	self := c.self.Public()
	switch {
	case f.Hop == 0 && f.From == m.Author && f.To != self && f.To != m.Author:
		c.forwardFriendFrame(cs, f)
	case f.Hop == 1 && f.To == self && f.From != self:
		c.deliverFriendFrame(cs, f)
	}
}

func routeKey(sid [friendSessionSize]byte, id channel.IdentityKey) string {
	return string(sid[:]) + string(id[:])
}

// forwardFriendFrame passes a hop-0 frame on toward its addressee.
func (c *Client) forwardFriendFrame(from *chanState, f friendFrame) {
	st := c.friends()
	now := c.cfg.Now()
	st.mu.Lock()
	recent := st.rate[f.From][:0]
	for _, t := range st.rate[f.From] {
		if now.Sub(t) < friendForwardWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= friendForwardBurst {
		st.rate[f.From] = recent
		st.mu.Unlock()
		c.log.Warn("friend path: forward rate exceeded; dropped", "author", channel.IdentityKey(f.From))
		return
	}
	st.rate[f.From] = append(recent, now)
	for k, r := range st.routes {
		if now.Sub(r.seen) > friendRouteTTL {
			delete(st.routes, k)
		}
	}
	st.routes[routeKey(f.Session, f.From)] = friendRoute{ch: from.key.ID(), seen: now}
	route, hasRoute := st.routes[routeKey(f.Session, f.To)]
	tamper := st.tamper
	st.mu.Unlock()

	var target *chanState
	if hasRoute {
		c.mu.Lock()
		target = c.chans[route.ch]
		c.mu.Unlock()
	}
	if target == nil {
		target = c.channelWithAuthor(f.To, from.key.ID())
	}
	if target == nil || target.key.ID() == from.key.ID() || !target.key.CanWrite() {
		c.log.Debug("friend path: no channel with the addressee; dropped", "to", channel.IdentityKey(f.To))
		return
	}
	f.Hop = 1
	if tamper != nil {
		f.Payload = tamper(f.To, f.Payload)
	}
	if _, err := c.postLater(target, channel.KindControl, f.Encode()); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("friend path: forward not stored", "err", err)
	}
}

// channelWithAuthor finds a channel, other than except, whose history
// holds a text message written by id.
func (c *Client) channelWithAuthor(id channel.IdentityKey, except channel.ID) *chanState {
	want := id.String()
	c.mu.Lock()
	var cands []*chanState
	for ch, cs := range c.chans {
		if ch != except && cs.key.CanWrite() && cs.name != MasterChannel && cs.name != NodeChannel {
			cands = append(cands, cs)
		}
	}
	c.mu.Unlock()
	errFound := errors.New("found")
	for _, cs := range cands {
		err := c.db.Meta(historyPrefix + cs.key.ID().String()).ForEach(func(_, v []byte) error {
			if bytes.Contains(v, []byte(`"a":"`+want+`"`)) {
				return errFound
			}
			return nil
		})
		if errors.Is(err, errFound) {
			return cs
		}
	}
	return nil
}

// deliverFriendFrame hands a hop-1 frame to its session, or starts a
// session for a waiting Friends.Accept; anything else is dropped.
func (c *Client) deliverFriendFrame(cs *chanState, f friendFrame) {
	st := c.friends()
	st.mu.Lock()
	defer st.mu.Unlock()
	c.deliverFriendLocked(st, cs, f)
}

func (c *Client) deliverFriendLocked(st *friendState, cs *chanState, f friendFrame) {
	s := st.sessions[f.Session]
	if s == nil {
		started := st.acceptors[f.From]
		if started == nil {
			// An unknown session: kept a while for a responder about to wait.
			if len(st.early) >= maxEarlyFrames {
				st.early = st.early[1:]
			}
			st.early = append(st.early, earlyFrame{cs: cs, f: f, seen: c.cfg.Now()})
			return
		}
		if len(st.sessions) >= maxFriendSessions {
			return
		}
		s = &friendSession{peer: f.From, paths: f.Paths, accepting: true,
			relays: map[channel.ID]*friendRelay{}, arrived: make(chan struct{}, 1)}
		st.sessions[f.Session] = s
		delete(st.acceptors, f.From) // one session per wait
		started <- f.Session
	}
	if s.peer != f.From {
		return
	}
	r := s.relays[cs.key.ID()]
	if r == nil {
		if !s.accepting || len(s.order) >= int(s.paths) {
			return
		}
		r = &friendRelay{c: c, cs: cs, peer: f.From, session: f.Session, paths: s.paths, in: make(chan []byte, friendInboxSize)}
		s.relays[cs.key.ID()] = r
		s.order = append(s.order, r)
		select {
		case s.arrived <- struct{}{}:
		default:
		}
	}
	// Deliver in the sender's order: hold early frames until the gap fills.
	if f.Seq < r.next || f.Seq-r.next >= friendInboxSize {
		return // a duplicate, or too far ahead
	}
	if r.pending == nil {
		r.pending = map[byte][]byte{}
	}
	r.pending[f.Seq] = f.Payload
	for {
		p, ok := r.pending[r.next]
		if !ok {
			return
		}
		select {
		case r.in <- p:
		default:
			c.log.Warn("friend path: inbox full; dropped", "channel", cs.name)
			return
		}
		delete(r.pending, r.next)
		r.next++
	}
}
