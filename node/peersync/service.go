package peersync

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// ProtocolID is the libp2p protocol this package speaks.
const ProtocolID = protocol.ID("/redpanda/sync/2.0.0")

// Defaults for Config fields left zero.
const (
	DefaultFetchTimeout = 10 * time.Second
	DefaultMaxInFlight  = 256
	DefaultQueueBytes   = 1 << 20
	// DefaultFetchBytes bounds the bodies asked of one peer and not yet
	// received by their announced sizes: 64 of the largest envelopes, as
	// the fetch window always allowed, and half the 8 MiB at which the
	// serving peer would drop us for not reading.
	DefaultFetchBytes = 64 * channel.MaxEnvelopeSize
	// DefaultIngestConcurrency and DefaultIngestBytes bound one peer's
	// messages being validated and stored at once. The bytes keep the old
	// worst case (64 of the largest envelopes); the count is high because a
	// node-to-node hop holds rate × commit time messages waiting for the
	// group commit, and at 64 the hop stored 64 per fsync and saturated
	// near 1,000 msg/s on a 2-core VM (p99 4 s at 1,000 msg/s).
	DefaultIngestConcurrency = 1024
	DefaultIngestBytes       = 64 * channel.MaxEnvelopeSize
	DefaultReconcileInterval = time.Minute
	DefaultMaxPending        = 1 << 16
	// DefaultMaxWantsPerPeer bounds the wants kept for one session: a
	// light client registers at most 256 channels, a super node shares
	// with this one the channels both serve.
	DefaultMaxWantsPerPeer = 4096
	// DefaultMaxWants bounds the wants kept over all sessions (~40 bytes
	// each in two maps).
	DefaultMaxWants = 1 << 18
	// DefaultHelloTimeout is how long a peer has to send its Hello.
	DefaultHelloTimeout = 10 * time.Second
	// DefaultMaxStrangerSessions and DefaultMaxStrangerSessionsPerPrefix
	// bound the sessions of peers the node does not know (Access.Known),
	// in total and per address prefix (IPv4 /24, IPv6 /48);
	// DefaultStrangerLifetime is how long such a session is kept.
	DefaultMaxStrangerSessions          = 256
	DefaultMaxStrangerSessionsPerPrefix = 16
	DefaultStrangerLifetime             = 2 * time.Minute
	// DefaultOpenWait is how long the larger peer ID of a node pair waits
	// for the smaller to open the session before it opens it itself.
	DefaultOpenWait = 5 * time.Second
)

// Sentinel errors callers branch on.
var (
	ErrClosed      = errors.New("sync: service closed")
	ErrNotAccepted = errors.New("sync: refused by the Accept policy")
	// ErrRateLimited: the channel is over this node's rate limit (Admit).
	ErrRateLimited = errors.New("sync: channel over its rate limit")
	ErrNotWanted   = errors.New("sync: channel not wanted here")
	ErrRejected    = errors.New("sync: message rejected by peer")
	ErrPeerTooSlow = errors.New("sync: peer lets its queue grow past the hard limit")
	ErrProtocol    = errors.New("sync: protocol violation")
	ErrNoSession   = errors.New("sync: no session with peer")
	// ErrNotRequested: a peer sent a body this node did not fetch from it.
	ErrNotRequested = errors.New("sync: body not requested")
	// ErrTooManyStrangers: a session of a peer the node does not know was
	// closed to keep strangers' sessions within their bounds.
	ErrTooManyStrangers = errors.New("sync: session of an unknown peer closed")
)

// RejectError is a peer's refusal of a pushed message. It matches
// ErrRejected with errors.Is.
type RejectError struct {
	ID     channel.MessageID
	Reason wirepb.Reason
	Detail string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("sync: message %s rejected: %s: %s", e.ID, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	// Now is the clock for the relay rule and the reconcile window;
	// default time.Now. Fetch timeouts use the real clock.
	Now func() time.Time
	// Policy is passed to channel.Validate.
	Policy channel.Policy
	// ClockTrusted, when set and returning false, makes the relay rule
	// skip the timestamp window (Policy.IgnoreClock): a node whose clock
	// is not synchronised yet must not reject messages by it.
	ClockTrusted func() bool
	// Retention bounds how far back reconciliation looks; default
	// store.DefaultRetention. Keep it equal to the store's.
	Retention time.Duration
	// FetchTimeout is how long an announcer has to deliver a body before
	// the next announcer is asked; default 10 s.
	FetchTimeout time.Duration
	// MaxInFlight bounds the fetches left unanswered per peer; default
	// 256. It is also sent in Hello: the most this node lets a peer leave
	// unanswered.
	MaxInFlight int
	// FetchBytes bounds the announced bytes of the fetches left unanswered
	// per peer, so small messages get a wide window and large ones the old
	// one; default DefaultFetchBytes. A fetch whose size was not announced
	// counts as the largest envelope.
	FetchBytes int
	// QueueBytes is the soft limit of a peer's outbound queue: past it,
	// announcements are dropped (reconciliation recovers them). Past 8x,
	// the peer is disconnected with ErrPeerTooSlow. Default 1 MiB.
	QueueBytes int
	// IngestConcurrency bounds the messages of one peer being validated
	// and stored at once; default 1024.
	IngestConcurrency int
	// IngestBytes bounds the envelope bytes of one peer being validated
	// and stored at once; default DefaultIngestBytes (~4 MiB).
	IngestBytes int
	// ReconcileInterval is how often sessions that dropped announcements
	// reconcile again; default 1 min.
	ReconcileInterval time.Duration
	// MaxPending bounds the bodies waiting to be fetched, over all peers;
	// default 65536.
	MaxPending int
	// Access is the relay rule the service asks (authorization, blocks,
	// rate limits, strangers). Nil: every peer may exchange every
	// channel, every message is admitted and every peer is known, so no
	// stranger bound applies (tests, tools).
	Access Access
	// MaxWantsPerPeer and MaxWants bound the wants kept, per session and
	// over all; wants past them are ignored. Defaults
	// DefaultMaxWantsPerPeer and DefaultMaxWants.
	MaxWantsPerPeer, MaxWants int
	// HelloTimeout: a session whose peer has not sent its Hello by then
	// is closed; default DefaultHelloTimeout.
	HelloTimeout time.Duration
	// MaxStrangerSessions, MaxStrangerSessionsPerPrefix and
	// StrangerLifetime bound strangers' sessions (see Access.Known); defaults
	// above.
	MaxStrangerSessions, MaxStrangerSessionsPerPrefix int
	StrangerLifetime                                  time.Duration
	// OpenWait is how long the larger peer ID of a node pair, when it has
	// a reason to sync with the peer (Access.Opens), waits for the smaller
	// to open the session before it opens it itself; default
	// DefaultOpenWait.
	OpenWait time.Duration
	// Agent is sent in Hello, for the peer's logs.
	Agent string
	// Light makes this a light client's service, one that serves nobody:
	// its Hello says so (Hello.light), so a node tells it only about the
	// channels it wants, and it opens every session itself and accepts
	// none (a node opening to it would send its Hello before learning
	// the client is light). Default false: a node.
	Light bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention <= 0 {
		c.Retention = store.DefaultRetention
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.FetchBytes <= 0 {
		c.FetchBytes = DefaultFetchBytes
	}
	if c.IngestConcurrency <= 0 {
		c.IngestConcurrency = DefaultIngestConcurrency
	}
	if c.IngestBytes <= 0 {
		c.IngestBytes = DefaultIngestBytes
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxWantsPerPeer <= 0 {
		c.MaxWantsPerPeer = DefaultMaxWantsPerPeer
	}
	if c.MaxWants <= 0 {
		c.MaxWants = DefaultMaxWants
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = DefaultHelloTimeout
	}
	if c.MaxStrangerSessions <= 0 {
		c.MaxStrangerSessions = DefaultMaxStrangerSessions
	}
	if c.MaxStrangerSessionsPerPrefix <= 0 {
		c.MaxStrangerSessionsPerPrefix = DefaultMaxStrangerSessionsPerPrefix
	}
	if c.StrangerLifetime <= 0 {
		c.StrangerLifetime = DefaultStrangerLifetime
	}
	if c.OpenWait <= 0 {
		c.OpenWait = DefaultOpenWait
	}
	if c.Agent == "" {
		c.Agent = "redpanda-homenode"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stored is a message newly stored by this node, as given to subscribers.
type Stored struct {
	ID       channel.MessageID
	Envelope *channel.Envelope
	From     peer.ID // "" for Publish
}

// Service runs the sync protocol for one host and one store.
type Service struct {
	h   host.Host
	db  *store.DB
	cfg Config
	log *slog.Logger
	// access is the relay rule (Config.Access, or open);
	// knowsPeers says it tells known peers from strangers.
	access     Access
	knowsPeers bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	wants    map[channel.ID]struct{}
	sessions map[peer.ID]*session
	// opening are the peers this side is opening a session to (connected):
	// again says that a reason to try arrived while the open was under
	// way (the peer came to speak sync, or connected once more), so that
	// a failed open is retried instead of that reason being lost.
	opening map[peer.ID]*opening
	// live is the sessions map's values, replaced whenever the map
	// changes (under mu), so that announcing a message, which happens far
	// more often, reads the list without a lock or a copy.
	live  atomic.Pointer[[]*session]
	subs  map[chan Stored]struct{}
	stats map[peer.ID]*counters

	fetch    *fetcher
	workers  *workerPool
	sigs     *sigChecks
	suspects *suspects
	wanters  *wanters
	rejected *recentSet
	notifee  *network.NotifyBundle
	protoSub event.Subscription // the peers' protocol changes (identify push)
	totals   totals
	// wantTotal is the wants kept over all sessions (MaxWants).
	wantTotal atomic.Int64

	// ignoreFetch makes this node ignore Fetch frames: a test hook for a
	// real peer that misbehaves by stalling.
	ignoreFetch atomic.Bool
}

// New starts the sync service on h, storing into db. The caller keeps
// ownership of h and db and closes them after Close.
func New(h host.Host, db *store.DB, cfg Config) *Service {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h: h, db: db, cfg: cfg,
		log:      cfg.Logger.With("component", "sync", "self", h.ID().ShortString()),
		ctx:      ctx,
		cancel:   cancel,
		wants:    map[channel.ID]struct{}{},
		sessions: map[peer.ID]*session{},
		opening:  map[peer.ID]*opening{},
		subs:     map[chan Stored]struct{}{},
		stats:    map[peer.ID]*counters{},
		rejected: newRecentSet(4096),
	}
	s.access, s.knowsPeers = accessOf(cfg)
	s.fetch = newFetcher(s)
	s.workers = newWorkerPool(&s.wg, workerIdle)
	s.sigs = newSigChecks(channel.NewBatchVerifier(rand.Reader, 0))
	s.wanters = newWanters()
	s.suspects = newSuspects()
	if !cfg.Light {
		h.SetStreamHandler(ProtocolID, s.handleStream)
	}
	s.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { s.connected(c.RemotePeer()) },
	}
	// A peer whose sync was not up yet when it connected (a node's host
	// listens, and its discovery dials its friends, before its sync
	// service runs) refused the first open; identify tells when it comes
	// to speak sync, and the session is opened then. Without this the
	// pair stayed without a session for as long as the connection lasted,
	// and nothing was relayed between the two.
	if sub, err := h.EventBus().Subscribe(new(event.EvtPeerProtocolsUpdated)); err != nil {
		s.log.Warn("no protocol updates from identify: a peer whose sync starts after it connected gets no session", "err", err)
	} else {
		s.protoSub = sub
		s.wg.Add(1)
		go s.protocolsLoop(sub)
	}
	h.Network().Notify(s.notifee)
	for _, p := range h.Network().Peers() {
		s.connected(p)
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// protocolsLoop opens a session to a connected peer that came to speak
// sync (connected decides whether this side opens).
func (s *Service) protocolsLoop(sub event.Subscription) {
	defer s.wg.Done()
	for e := range sub.Out() {
		ev, ok := e.(event.EvtPeerProtocolsUpdated)
		if !ok || !slices.Contains(ev.Added, ProtocolID) {
			continue
		}
		if s.h.Network().Connectedness(ev.Peer) == network.Connected {
			s.connected(ev.Peer)
		}
	}
}

// Close stops the service: no new sessions, every session closed, every
// goroutine finished. It does not close the host or the store.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
	s.mu.Unlock()
	s.h.RemoveStreamHandler(ProtocolID)
	s.h.Network().StopNotify(s.notifee)
	if s.protoSub != nil {
		_ = s.protoSub.Close()
	}
	s.cancel()
	for _, ss := range sessions {
		ss.close(ErrClosed)
	}
	s.workers.close()
	s.wg.Wait()
	return nil
}

// Want declares channels this node wants (serves): it stores their
// messages, announces and serves them, and reconciles them with peers
// that want them too.
func (s *Service) Want(chs ...channel.ID) {
	var added []channel.ID
	s.mu.Lock()
	for _, ch := range chs {
		if _, ok := s.wants[ch]; !ok {
			s.wants[ch] = struct{}{}
			added = append(added, ch)
		}
	}
	sessions := s.sessionList()
	s.mu.Unlock()
	if len(added) == 0 {
		return
	}
	for _, ss := range sessions {
		// Marked before the peer is told, so that its Want crossing ours
		// finds the mark (onWant).
		ss.noteToldFirst(added)
		ss.tellWant(added, nil)
		// We gained interest, so we ask for the history.
		ss.reconcileShared(added)
	}
}

// Unwant withdraws channels. Stored messages stay until retention.
func (s *Service) Unwant(chs ...channel.ID) {
	var removed []channel.ID
	s.mu.Lock()
	for _, ch := range chs {
		if _, ok := s.wants[ch]; ok {
			delete(s.wants, ch)
			removed = append(removed, ch)
		}
	}
	sessions := s.sessionList()
	s.mu.Unlock()
	if len(removed) == 0 {
		return
	}
	for _, ss := range sessions {
		ss.forgetToldFirst(removed)
		ss.tellWant(nil, removed)
	}
}

// Wants reports whether this node wants ch.
func (s *Service) Wants(ch channel.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.wants[ch]
	return ok
}

func (s *Service) wantList() []channel.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.wants))
}

// intersect returns the keys in both a and b.
func intersect(a, b map[channel.ID]struct{}) []channel.ID {
	if len(b) < len(a) {
		a, b = b, a
	}
	var out []channel.ID
	for ch := range a {
		if _, ok := b[ch]; ok {
			out = append(out, ch)
		}
	}
	return out
}

// sendHeldHello sends our Hello on a session whose peer's Hello just
// arrived, if it was held: to a discreet peer (a light one, or a node
// this node does not know: Access.Known) it lists only the channels both
// want, so that a peer that opens a session learns nothing of what this
// node serves beyond what it named itself; to a known node the channels
// this node wants that the peer may sync with it (Access.Accept).
func (s *Service) sendHeldHello(ss *session) {
	ss.mu.Lock()
	sent, light := ss.helloSent, ss.light
	ss.mu.Unlock()
	if sent {
		return
	}
	discreet := light || (s.knowsPeers && !s.access.Known(ss.peer))
	var asked map[channel.ID]bool
	if !discreet {
		// Asked before the lock: Accept may wait (a statement exchange).
		asked = s.mayList(ss.peer)
	}
	var late []channel.ID
	s.mu.Lock()
	ss.mu.Lock()
	if ss.helloSent {
		ss.mu.Unlock()
		s.mu.Unlock()
		return
	}
	ss.discreet = discreet
	var wants []channel.ID
	if discreet {
		wants = intersect(s.wants, ss.wants)
	} else {
		wants, late = s.mayListLocked(asked)
	}
	ss.mu.Unlock()
	ss.sendHello(s.helloFrames(wants))
	s.mu.Unlock()
	s.tellLate(ss, late)
}

// mayList asks Access.Accept, for each channel this node wants, whether
// p may sync it here: a full peer's Hello lists only those, so that a
// peer is not told of channels it has no part in.
func (s *Service) mayList(p peer.ID) map[channel.ID]bool {
	asked := map[channel.ID]bool{}
	for _, ch := range s.wantList() {
		asked[ch] = s.accept(p, ch)
	}
	return asked
}

// mayOnly returns those of chs that p may sync here (Access.Accept).
func (s *Service) mayOnly(p peer.ID, chs []channel.ID) []channel.ID {
	var out []channel.ID
	for _, ch := range chs {
		if s.accept(p, ch) {
			out = append(out, ch)
		}
	}
	return out
}

// mayListLocked splits this node's wants (s.mu held) into those mayList
// allowed and those wanted since it ran, not asked yet.
func (s *Service) mayListLocked(asked map[channel.ID]bool) (allowed, late []channel.ID) {
	for ch := range s.wants {
		ok, was := asked[ch]
		switch {
		case !was:
			late = append(late, ch)
		case ok:
			allowed = append(allowed, ch)
		}
	}
	return allowed, late
}

// tellLate tells the peer of ss, after our Hello, about the channels
// this node came to want while the Hello was being made, those it may sync.
func (s *Service) tellLate(ss *session, late []channel.ID) {
	var add []channel.ID
	for _, ch := range late {
		if s.Wants(ch) && s.accept(ss.peer, ch) {
			add = append(add, ch)
		}
	}
	if len(add) > 0 {
		ss.sendWant(add, nil)
	}
}

// helloFrames is this side's Hello listing wants.
func (s *Service) helloFrames(wants []channel.ID) []*wirepb.Frame {
	fs := helloFrames(s.cfg.Agent, s.cfg.MaxInFlight, wants)
	fs[0].GetHello().Light = s.cfg.Light
	return fs
}

// sessionList must be called with s.mu held.
func (s *Service) sessionList() []*session {
	return slices.Collect(maps.Values(s.sessions))
}

// sessionsChanged republishes the live list; s.mu is held.
func (s *Service) sessionsChanged() {
	l := s.sessionList()
	s.live.Store(&l)
}

// liveSessions returns the sessions as of the last change; the caller
// must not modify the slice.
func (s *Service) liveSessions() []*session {
	if l := s.live.Load(); l != nil {
		return *l
	}
	return nil
}

// Peers returns the peers with a live session.
func (s *Service) Peers() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.sessions))
}

// Publish stores a locally originated message after the relay rule and
// announces it to every peer that wants its channel. It returns once the
// message is durable. A message already stored returns store.ErrExists.
func (s *Service) Publish(ctx context.Context, e *channel.Envelope) (channel.MessageID, error) {
	if err := ctx.Err(); err != nil {
		return channel.MessageID{}, err
	}
	return s.ingest("", e)
}

// Subscribe returns a channel that receives every message this node newly
// stores (published, pushed or fetched), and a function that ends the
// subscription. A subscriber that falls more than buf messages behind
// misses messages (logged); it can catch up from the store's Headers.
func (s *Service) Subscribe(buf int) (<-chan Stored, func()) {
	ch := make(chan Stored, max(buf, 1))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

func (s *Service) notify(st Stored) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- st:
		default:
			s.log.Warn("subscriber too slow, message not delivered to it", "id", st.ID)
		}
	}
}

// PushTo sends a message to peer p as a light client does, and waits
// until p acknowledges it as durable or rejects it (a *RejectError that
// matches ErrRejected). It opens a session if none exists.
func (s *Service) PushTo(ctx context.Context, p peer.ID, e *channel.Envelope) (channel.MessageID, error) {
	id := e.ID()
	ss, err := s.session(ctx, p)
	if err != nil {
		return id, err
	}
	return id, ss.push(ctx, e)
}

// session returns the live session with p, opening one if needed
// (whatever the peer-ID order: a client must be able to reach its node).
func (s *Service) session(ctx context.Context, p peer.ID) (*session, error) {
	s.mu.Lock()
	ss := s.sessions[p]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if ss != nil {
		return ss, nil
	}
	return s.open(ctx, p)
}

// opening is an open under way (Service.opening).
type opening struct{ again bool }

// connected opens a session to a newly connected peer the node has a
// reason to sync with (Access.Opens). Of a pair of nodes the smaller peer
// ID opens at once; the larger waits Config.OpenWait and opens only if no
// session came, so that a pair where only the larger knows the other (it
// was configured with it) still syncs, and a pair where both know each
// other gets one stream (of two that race, both sides keep the smaller
// ID's: startSession). A peer that gets a reason later is opened to by
// Resync. A light service opens every session at once (it accepts none).
// It is also called when a connected peer comes to speak sync; one open
// runs per peer at a time, and a call while it runs makes a failed open
// try again.
func (s *Service) connected(p peer.ID) {
	if p == s.h.ID() {
		return
	}
	if !s.cfg.Light && !s.access.Opens(p) {
		s.log.Debug("no sync session opened: no reason to sync with the peer yet", "peer", p)
		return
	}
	waits := !s.cfg.Light && bytes.Compare([]byte(s.h.ID()), []byte(p)) > 0
	s.mu.Lock()
	// A session over a connection that is gone is ending: the peer
	// restarted and connected again before this side saw the old stream
	// end, and the new connection needs a session of its own.
	ss := s.sessions[p]
	exists := ss != nil && !ss.st.Conn().IsClosed()
	closed := s.closed
	if o := s.opening[p]; o != nil {
		o.again = true
		s.mu.Unlock()
		return
	}
	if !closed && !exists {
		s.opening[p] = &opening{}
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed || exists {
		return
	}
	go func() {
		defer s.wg.Done()
		if waits && !s.peerDidNotOpen(p) {
			s.openDone(p, nil, false)
			return
		}
		// A light client is the only side that opens, so it tries again
		// (a node out of streams for the moment) while the node stays
		// connected and speaks sync.
		for wait := time.Second; ; wait = min(2*wait, time.Minute) {
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			_, err := s.open(ctx, p)
			cancel()
			if err == nil {
				s.openDone(p, nil, false)
				return
			}
			s.log.Debug("no sync session", "peer", p, "err", err)
			if !s.cfg.Light {
				if s.openDone(p, err, false) {
					continue // the peer came to speak sync meanwhile
				}
				return
			}
			if !s.openDone(p, err, s.retryOpen(p, wait)) {
				return
			}
		}
	}()
}

// peerDidNotOpen waits Config.OpenWait for p, the smaller peer ID, to open
// the session, and reports whether this side should open it instead: p is
// still connected, opened no session, may speak sync (identify has not
// said it does not: a light client serves none, it opens itself) and the
// node still has a reason to sync with it.
func (s *Service) peerDidNotOpen(p peer.ID) bool {
	t := time.NewTimer(s.cfg.OpenWait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
	}
	if s.h.Network().Connectedness(p) != network.Connected {
		return false
	}
	if ss := s.sessionFor(p); ss != nil && !ss.st.Conn().IsClosed() {
		return false
	}
	if protos, err := s.h.Peerstore().GetProtocols(p); err == nil && len(protos) > 0 && !slices.Contains(protos, ProtocolID) {
		return false
	}
	if !s.access.Opens(p) {
		return false
	}
	s.log.Debug("opening the sync session the peer did not open", "peer", p)
	return true
}

// openDone ends the open of p, unless it failed (err) and keep is set
// or a reason to try again arrived while it ran: then it reports true and
// the open goes on.
func (s *Service) openDone(p peer.ID, err error, keep bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opening[p]
	if o == nil {
		return false
	}
	again := err != nil && o.again && !s.closed
	o.again = false
	if err != nil && (keep || again) {
		return true
	}
	delete(s.opening, p)
	return false
}

// retryOpen waits, then reports whether opening a session to p is worth
// another try.
func (s *Service) retryOpen(p peer.ID, wait time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-time.After(wait):
	}
	if s.h.Network().Connectedness(p) != network.Connected || s.sessionFor(p) != nil {
		return false
	}
	protos, err := s.h.Peerstore().SupportsProtocols(p, ProtocolID)
	return err == nil && len(protos) > 0
}

func (s *Service) open(ctx context.Context, p peer.ID) (*session, error) {
	ctx = network.WithAllowLimitedConn(ctx, "redpanda sync")
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), p, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("sync: open stream to %s: %w", p, err)
	}
	ss, err := s.startSession(st)
	if errors.Is(err, errKeptOlder) {
		_ = st.Reset()
		return ss, nil
	}
	if err != nil {
		_ = st.Reset()
		return nil, err
	}
	return ss, nil
}

// errKeptOlder: startSession kept the session the smaller peer ID opened
// over a stream the larger opened while it lived (the two raced).
var errKeptOlder = errors.New("sync: the session the smaller peer ID opened is kept")

// bySmaller reports whether st was opened by the smaller peer ID of the
// pair.
func (s *Service) bySmaller(st network.Stream) bool {
	self, p := []byte(s.h.ID()), []byte(st.Conn().RemotePeer())
	if st.Stat().Direction == network.DirInbound {
		return bytes.Compare(p, self) < 0
	}
	return bytes.Compare(self, p) < 0
}

// keepsOld says whether a node keeps old, a live session the smaller
// peer ID opened, instead of a new stream st that the larger opened: the
// two sides opened at once (the larger after Config.OpenWait), and both
// keep the same one. Any other new stream replaces the old session: the
// peer restarted its side, or connected again.
func (s *Service) keepsOld(old *session, st network.Stream) bool {
	if s.cfg.Light || old.st.Conn().IsClosed() {
		return false
	}
	select {
	case <-old.done:
		return false
	default:
	}
	return s.bySmaller(old.st) && !s.bySmaller(st)
}

func (s *Service) handleStream(st network.Stream) {
	if _, err := s.startSession(st); err != nil {
		_ = st.Reset()
	}
}

// startSession installs a session for the stream's peer, replacing an
// older one: a new stream means the peer restarted its side; except that
// a live session the smaller peer ID opened is kept over a stream the
// larger opened (keepsOld): then it returns that session and
// errKeptOlder.
func (s *Service) startSession(st network.Stream) (*session, error) {
	p := st.Conn().RemotePeer()
	var asked map[channel.ID]bool
	if st.Stat().Direction != network.DirInbound {
		// Asked before the lock: Accept may wait (a statement exchange).
		asked = s.mayList(p)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	old := s.sessions[p]
	if old != nil && s.keepsOld(old, st) {
		s.mu.Unlock()
		s.log.Debug("two sync streams raced: the one the smaller peer ID opened is kept", "peer", p)
		return old, errKeptOlder
	}
	c := s.stats[p]
	if c == nil {
		c = &counters{}
		s.stats[p] = c
	}
	ss := newSession(s, st, c)
	// The opener's Hello is queued before the session is visible, so that
	// no Want or Announce can overtake it. The other side holds its Hello
	// until the opener's arrives (the opener never waits, so neither side
	// waits for ever) and then knows whether the peer is light.
	var late []channel.ID
	if !ss.openedByPeer {
		var wants []channel.ID
		wants, late = s.mayListLocked(asked)
		ss.sendHello(s.helloFrames(wants))
	}
	s.sessions[p] = ss
	s.sessionsChanged()
	s.wg.Add(1)
	s.mu.Unlock()
	s.tellLate(ss, late)
	if old != nil {
		old.close(errors.New("replaced by a new stream"))
	}
	go ss.readLoop()
	s.boundStrangers(ss)
	return ss, nil
}

// How soon a light client reopens a session that ended while its
// connection stayed; variables so that tests need not wait a minute.
var (
	reopenWait     = time.Second
	reopenFlapAge  = time.Minute
	reopenFlapWait = time.Minute
)

func (s *Service) sessionEnded(ss *session) {
	s.wanters.drop(ss)
	s.mu.Lock()
	current := s.sessions[ss.peer] == ss
	if current {
		delete(s.sessions, ss.peer)
		s.sessionsChanged()
		// Counters live as long as the peer's session, so that passing
		// peers do not grow the map without bound.
		delete(s.stats, ss.peer)
	}
	reopen := current && s.cfg.Light && !s.closed
	if reopen {
		s.wg.Add(1)
	}
	// The session's connection went away while the peer is connected
	// over another (it restarted, and connected again before this side
	// saw the old stream end): the new connection gets a session, as
	// though it had just come up.
	moved := current && !s.cfg.Light && !s.closed && ss.st.Conn().IsClosed()
	s.mu.Unlock()
	s.fetch.peerGone(ss.peer)
	if moved && s.h.Network().Connectedness(ss.peer) == network.Connected {
		s.connected(ss.peer)
	}
	if reopen {
		// A light client is the only side that opens a session: if its
		// session ends while the connection stays (a reset stream, the
		// node cutting a slow reader off), nobody else will open the next.
		go func() {
			defer s.wg.Done()
			wait := reopenWait
			if time.Since(ss.started) < reopenFlapAge {
				// A session that keeps ending soon after it starts is not
				// retried faster than this.
				wait = reopenFlapWait
			}
			if s.retryOpen(ss.peer, wait) {
				s.connected(ss.peer)
			}
		}()
	}
}

func (s *Service) sessionFor(p peer.ID) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[p]
}

// loop runs the periodic work: fetch timeouts and catch-up reconciles.
func (s *Service) loop() {
	defer s.wg.Done()
	tick := max(s.cfg.FetchTimeout/4, 10*time.Millisecond)
	ft := time.NewTicker(tick)
	defer ft.Stop()
	rt := time.NewTicker(s.cfg.ReconcileInterval)
	defer rt.Stop()
	st := time.NewTicker(max(s.cfg.HelloTimeout/4, 10*time.Millisecond))
	defer st.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-st.C:
			s.expireSessions(time.Now())
		case <-ft.C:
			s.fetch.expire(time.Now())
		case <-rt.C:
			now := s.cfg.Now().UnixMilli()
			for _, ss := range s.liveSessions() {
				if w := ss.clockWait.Load(); w != 0 && now >= w && ss.clockWait.CompareAndSwap(w, 0) {
					// Messages refused as from the future are acceptable
					// now (the clock moved on, or jumped when it was put
					// right): catch up.
					ss.needResync.Store(true)
				}
				if !ss.needResync.Swap(false) {
					continue
				}
				if ss.queued() > s.cfg.QueueBytes/2 {
					// The peer is still not reading: catching up now would
					// only queue more. Try again next tick.
					ss.needResync.Store(true)
					continue
				}
				ss.reconcileShared(nil)
			}
		}
	}
}

// announce offers a newly stored message to every peer that wants its
// channel, except those in skip (who delivered or announced it).
//
// The frame is encoded once, for the first peer that wants it, and the
// same bytes are queued for every such peer: writers only read them.
func (s *Service) announce(h wire.Header, skip []peer.ID) {
	var frame []byte
	var buf [16]*session
next:
	for _, ss := range s.wanters.appendFor(h.Channel, buf[:0]) {
		for _, p := range skip {
			if ss.peer == p {
				continue next
			}
		}
		if !ss.peerWants(h.Channel) || !s.accept(ss.peer, h.Channel) {
			continue
		}
		if frame == nil {
			var err error
			frame, err = wire.AppendMsgFrame(nil, &wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{
				Headers: []*wirepb.Header{wire.HeaderToPB(h)}}}})
			if err != nil {
				s.log.Error("marshal announcement", "err", err)
				return
			}
		}
		ss.enqueueFrame(frame, kindAnnounce, true)
	}
}

func (s *Service) accept(p peer.ID, ch channel.ID) bool {
	return s.access.Accept(p, ch)
}

// Stats returns the traffic counters of peer p's current session (kept
// across a stream replaced by a new one, dropped when the peer leaves).
func (s *Service) Stats(p peer.ID) PeerStats {
	s.mu.Lock()
	c := s.stats[p]
	s.mu.Unlock()
	if c == nil {
		return PeerStats{FramesIn: map[string]uint64{}, FramesOut: map[string]uint64{}}
	}
	return c.snapshot()
}
