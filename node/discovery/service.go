package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// protectTag marks connections to the super nodes a channel syncs with,
// so the connection manager keeps them.
const protectTag = "redpanda-discovery"

// served is one channel this node serves.
type served struct {
	st       *Statement
	until    time.Time         // st.Until, at most MaxStatementValidity after it arrived
	handed   bool              // handed over by a registered user (Retain drops it)
	provided map[Day]time.Time // last successful provide per key day
	// lookup backs the provider lookups of the channel off while they
	// find nobody new (idle.go).
	lookup lookupWait
}

// Service runs the DHT, provides served channels, keeps super nodes
// connected per channel and answers statement exchanges.
type Service struct {
	h   host.Host
	dht *dht.IpfsDHT
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	provideKick  chan struct{}
	maintainKick chan struct{}
	friendKick   chan struct{}
	// lookups counts the provider lookups of the upkeep, for tests.
	lookups atomic.Int64

	provs   *providerDatastore
	kadRate *peerRate

	mu        sync.Mutex
	closed    bool
	bootstrap []peer.AddrInfo                      // configured, then added at run time
	persisted []peer.AddrInfo                      // known before the restart
	served    map[channel.ID]*served               // this node's channels and statements
	authz     map[peer.ID]map[channel.ID]time.Time // verified statements of peers: until
	authzN    int                                  // entries in authz (MaxAuthz)
	pending   map[peer.ID]*pendingExchange         // exchanges under way
	backoff   map[channel.ID]map[peer.ID]time.Time // failed providers: skip until
	protected map[peer.ID]map[channel.ID]bool      // channels each protected peer syncs
	friends   map[peer.ID]*friend                  // friend nodes (friends.go)
	seen      map[peer.ID][]multiaddr.Multiaddr    // where authorized peers were reached
}

type pendingExchange struct {
	n    int
	done chan struct{}
}

// New starts the DHT on h in server mode under ProtocolPrefix, with the
// diversity filter, restores the peers and statements persisted in
// cfg.Meta, serves the authz protocol and starts bootstrapping and the
// provide and upkeep loops. The caller keeps h and closes it after Close.
func New(h host.Host, cfg Config) (*Service, error) {
	cfg.setDefaults()
	s := &Service{
		h: h, cfg: cfg,
		log:          cfg.Logger.With("component", "discovery", "self", h.ID().ShortString()),
		provideKick:  make(chan struct{}, 1),
		maintainKick: make(chan struct{}, 1),
		friendKick:   make(chan struct{}, 1),
		bootstrap:    slices.Clone(cfg.Bootstrap),
		served:       map[channel.ID]*served{},
		authz:        map[peer.ID]map[channel.ID]time.Time{},
		pending:      map[peer.ID]*pendingExchange{},
		backoff:      map[channel.ID]map[peer.ID]time.Time{},
		protected:    map[peer.ID]map[channel.ID]bool{},
		seen:         map[peer.ID][]multiaddr.Multiaddr{},
	}
	s.persisted = s.loadPeers()
	s.friends = s.loadFriends()
	provs := newProviderDatastore(cfg)
	s.kadRate = newPeerRate(cfg.KadBytesPerSecond, cfg.KadBurst)
	opts := []dht.Option{}
	if cfg.RefreshPeriod > 0 {
		opts = append(opts, dht.RoutingTableRefreshPeriod(cfg.RefreshPeriod))
	}
	d, err := dht.New(&kadHost{Host: h, rate: s.kadRate}, append(opts,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.RoutingTablePeerDiversityFilter(dht.NewRTPeerDiversityFilter(h, cfg.MaxPeersPerIPGroupPerCpl, cfg.MaxPeersPerIPGroup)),
		dht.BootstrapPeersFunc(s.bootstrapPeers),
		// Only provider records are used; values (and public-key records)
		// would be storage offered to anyone for nothing.
		dht.DisableValues(),
		// Provider records go to a datastore that bounds them per peer,
		// per key and in total (kad-dht's own is an unbounded map).
		dht.ProviderDatastore(provs),
		dht.ProviderManagerOpts(records.ProvideValidity(cfg.ProvideValidity),
			records.CleanupInterval(min(cfg.ProvideValidity/4, time.Hour))),
	)...)
	if err != nil {
		return nil, fmt.Errorf("discovery.New: dht: %w", err)
	}
	s.dht = d
	s.provs = provs
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, ls := range s.loadStatements() {
		s.served[ls.st.Channel] = &served{st: ls.st, until: ls.until, handed: ls.handed, provided: map[Day]time.Time{}}
	}
	h.SetStreamHandler(AuthzProtocol, s.handleAuthz)
	if cfg.Node != nil {
		s.serveHandOvers(cfg.Node.HandOverChannels)
		s.serveIntroductions(cfg.Node.MayIntroduce)
	}
	s.wg.Add(4)
	go s.runBootstrap()
	go s.provideLoop()
	go s.maintainLoop()
	go s.friendLoop()
	return s, nil
}

// DHT returns the underlying kad-dht, for metrics and tests.
func (s *Service) DHT() *dht.IpfsDHT { return s.dht }

// Close stops the loops, saves the routing table's peers and closes the
// DHT. It does not close the host.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(AuthzProtocol)
	s.h.RemoveStreamHandler(HandOverProtocol)
	s.h.RemoveStreamHandler(IntroduceProtocol)
	s.savePeers()
	s.saveFriends()
	s.cancel()
	s.wg.Wait()
	if err := s.dht.Close(); err != nil {
		return fmt.Errorf("discovery.Close: %w", err)
	}
	return nil
}

// bootstrapPeers is what kad-dht dials when its routing table runs empty:
// the configured and run-time peers, the friend nodes, then the routing
// table's peers known before a restart.
func (s *Service) bootstrapPeers() []peer.AddrInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.bootstrap)
	out = append(out, s.friendBootstrapLocked()...)
	return append(out, s.persisted...)
}

// AddBootstrap adds a super node learned at run time (from an advert or
// a contact) to the bootstrap set and connects to it in the background.
func (s *Service) AddBootstrap(pi peer.AddrInfo) {
	if pi.ID == "" || pi.ID == s.h.ID() {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	found := false
	for i := range s.bootstrap {
		if s.bootstrap[i].ID == pi.ID {
			s.bootstrap[i].Addrs = mergeAddrs(s.bootstrap[i].Addrs, pi.Addrs)
			found = true
		}
	}
	if !found {
		s.bootstrap = append(s.bootstrap, pi)
		// Run-time peers come from friends and adverts: keep the newest.
		if extra := len(s.bootstrap) - len(s.cfg.Bootstrap) - maxRuntimeBootstrap; extra > 0 {
			s.bootstrap = slices.Delete(s.bootstrap, len(s.cfg.Bootstrap), len(s.cfg.Bootstrap)+extra)
		}
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.connectAndRefresh([]peer.AddrInfo{pi})
	}()
}

func (s *Service) runBootstrap() {
	defer s.wg.Done()
	s.connectAndRefresh(s.bootstrapPeers())
}

// connectAndRefresh dials the given peers and, if any answered, refreshes
// the routing table so that the node learns the DHT around it.
func (s *Service) connectAndRefresh(pis []peer.AddrInfo) {
	var ok atomic.Int32
	var wg sync.WaitGroup
	for _, pi := range pis {
		if pi.ID == s.h.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
			defer cancel()
			if err := s.h.Connect(ctx, pi); err != nil {
				s.log.Debug("bootstrap peer unreachable", "peer", pi.ID, "err", err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		if len(pis) > 0 {
			s.log.Warn("no bootstrap peer reachable", "tried", len(pis))
		}
		return
	}
	select {
	case err := <-s.dht.RefreshRoutingTable():
		if err != nil && s.ctx.Err() == nil {
			s.log.Debug("routing table refresh", "err", err)
		}
	case <-s.ctx.Done():
		return
	}
	s.kick(s.provideKick)
	s.kick(s.maintainKick)
}

func (s *Service) kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Serve makes this node serve a channel under st, a statement for this
// node issued by a member: it is persisted, the channel's key is provided
// now and on schedule, and super nodes that serve it are sought. A newer
// statement for a channel already served replaces the old one.
//
// A statement is used for at most MaxStatementValidity from now, however
// far its Until lies: a statement cannot be revoked, so one valid for a
// century would make the node serve the channel for ever.
func (s *Service) Serve(st *Statement) error {
	return s.serve(st, false)
}

func (s *Service) serve(st *Statement, handed bool) error {
	now := s.cfg.Now()
	if err := VerifyStatement(st, stChannel(st), s.h.ID(), now); err != nil {
		return fmt.Errorf("discovery.Serve: %w", err)
	}
	until := clampUntil(st.Until, now)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	sv := s.served[st.Channel]
	if sv != nil && !until.After(sv.until) {
		// A hand-over of a channel the node serves by its own statement
		// does not make it droppable by Retain.
		s.mu.Unlock()
		return nil
	}
	if sv == nil {
		sv = &served{provided: map[Day]time.Time{}, handed: handed}
		s.served[st.Channel] = sv
	}
	sv.st, sv.until = st, until
	sv.handed = sv.handed && handed
	sv.lookup = lookupWait{} // a renewed statement: look again at once
	saved := savedStatement{st: st, until: until, handed: sv.handed}
	s.mu.Unlock()
	s.saveStatement(saved)
	s.kick(s.provideKick)
	s.kick(s.maintainKick)
	s.kick(s.friendKick)
	return nil
}

// Retain stops serving every handed-over channel keep refuses: a statement
// lives only as long as a registration that lists its channel (the node
// calls it whenever registrations change: revoke, expiry, eviction, and at
// start, so one handed over by a user revoked while the node was down is
// dropped too). Channels served by Serve are not touched.
func (s *Service) Retain(keep func(ch channel.ID) bool) {
	s.mu.Lock()
	var drop []channel.ID
	for ch, sv := range s.served {
		if sv.handed && !keep(ch) {
			drop = append(drop, ch)
		}
	}
	s.mu.Unlock()
	for _, ch := range drop {
		s.Unserve(ch)
	}
	if len(drop) > 0 {
		s.log.Info("statements dropped with their registrations", "channels", len(drop))
	}
}

func stChannel(st *Statement) channel.ID {
	if st == nil {
		return channel.ID{}
	}
	return st.Channel
}

// Unserve stops serving ch: no more provides (the records on the DHT fade
// within ProvideValidity), no statement shown for it, its super nodes no
// longer kept connected for it.
func (s *Service) Unserve(ch channel.ID) {
	s.mu.Lock()
	if _, ok := s.served[ch]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.served, ch)
	delete(s.backoff, ch)
	// Proofs of peers for a channel this node no longer serves let them
	// sync nothing: they go too.
	for p, chs := range s.authz {
		if _, ok := chs[ch]; ok {
			delete(chs, ch)
			s.authzN--
		}
		if len(chs) == 0 {
			delete(s.authz, p)
		}
	}
	var unprotect []peer.ID
	for p, chs := range s.protected {
		delete(chs, ch)
		if len(chs) == 0 {
			delete(s.protected, p)
			unprotect = append(unprotect, p)
		}
	}
	s.mu.Unlock()
	for _, p := range unprotect {
		s.h.ConnManager().Unprotect(p, protectTag)
	}
	s.deleteStatement(ch)
}

// Served returns the channels this node serves (with a valid statement),
// including those restored from Meta at New.
func (s *Service) Served() []channel.ID {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]channel.ID, 0, len(s.served))
	for ch, sv := range s.served {
		if now.Before(sv.until) {
			out = append(out, ch)
		}
	}
	return out
}

// Authorized reports whether peer p may sync channel ch with this node:
// p showed a valid statement for ch, or p is this node and serves ch
// (sync asks that for Publish). If an exchange with p is under way it
// waits for it, at most AuthzWait, so that a sync session that starts as
// the connection opens is not refused for want of a moment. It is meant
// for the node's answer to sync.Access.Accept, next to the registration check for clients.
func (s *Service) Authorized(p peer.ID, ch channel.ID) bool {
	if s.authorizedNow(p, ch) {
		return true
	}
	s.mu.Lock()
	pe := s.pending[p]
	s.mu.Unlock()
	if pe == nil {
		return false
	}
	t := time.NewTimer(s.cfg.AuthzWait)
	defer t.Stop()
	select {
	case <-pe.done:
	case <-t.C:
	case <-s.ctx.Done():
	}
	return s.authorizedNow(p, ch)
}

func (s *Service) authorizedNow(p peer.ID, ch channel.ID) bool {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.served[ch]
	if sv == nil || !now.Before(sv.until) {
		return false
	}
	if p == s.h.ID() {
		return true
	}
	until, ok := s.authz[p][ch]
	return ok && now.Before(until)
}

// Known reports, without waiting, whether p proved it serves a channel
// this node serves (the node's answer to sync.Access.Known, beside registrations).
func (s *Service) Known(p peer.ID) bool {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, until := range s.authz[p] {
		if now.Before(until) {
			return true
		}
	}
	return false
}

// SyncPeers returns the connected peers authorized for ch.
func (s *Service) SyncPeers(ch channel.ID) []peer.ID {
	now := s.cfg.Now()
	s.mu.Lock()
	var cands []peer.ID
	for p, chs := range s.authz {
		if until, ok := chs[ch]; ok && now.Before(until) {
			cands = append(cands, p)
		}
	}
	s.mu.Unlock()
	out := cands[:0]
	for _, p := range cands {
		if s.h.Network().Connectedness(p) == network.Connected {
			out = append(out, p)
		}
	}
	return out
}

// Providers looks up the super nodes that announce ch under today's and
// yesterday's key, until ctx ends or the lookups complete. This node is
// left out.
func (s *Service) Providers(ctx context.Context, ch channel.ID) ([]peer.AddrInfo, error) {
	var (
		mu   sync.Mutex
		seen = map[peer.ID]int{}
		out  []peer.AddrInfo
		wg   sync.WaitGroup
	)
	for _, d := range lookupDays(s.cfg.Now()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pi := range s.dht.FindProvidersAsync(ctx, ProvideKey(ch, d), 0) {
				if pi.ID == s.h.ID() {
					continue
				}
				mu.Lock()
				if i, ok := seen[pi.ID]; ok {
					out[i].Addrs = mergeAddrs(out[i].Addrs, pi.Addrs)
				} else {
					seen[pi.ID] = len(out)
					out = append(out, pi)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(out) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("discovery.Providers: %w", err)
		}
	}
	return out, nil
}

// Connect connects to pi and exchanges statements for ch with it. It
// returns nil when both sides showed valid statements (pi is then
// authorized and kept connected for ch), or an error wrapping
// ErrNotAuthorized or the verification failure.
func (s *Service) Connect(ctx context.Context, pi peer.AddrInfo, ch channel.ID) error {
	if err := s.connect(ctx, pi, ch); err != nil {
		return fmt.Errorf("discovery.Connect %s: %w", pi.ID.ShortString(), err)
	}
	return nil
}

func (s *Service) connect(ctx context.Context, pi peer.AddrInfo, ch channel.ID) error {
	s.mu.Lock()
	sv := s.served[ch]
	s.mu.Unlock()
	if sv == nil {
		return ErrNotServed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	// Pending from before the dial: the sync session starts as soon as the
	// connection opens and its Accept must wait for this exchange.
	done := s.beginExchange(pi.ID)
	defer done()
	if err := s.h.Connect(ctx, pi); err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	errs, err := s.exchange(ctx, pi.ID, []*Statement{sv.st})
	if err != nil {
		return err
	}
	if e := errs[ch]; e != nil {
		return e
	}
	s.protect(pi.ID, ch)
	// As on the answering side: a node that proved a channel this node
	// serves is kept as a friend (with the addresses it was reached at),
	// so that the side that dialled finds it again after a restart too,
	// without a DHT lookup. (The friend loop's own exchanges record
	// theirs through friendShown.)
	s.mu.Lock()
	f := s.friends[pi.ID]
	first := f == nil || f.proved.IsZero()
	s.mu.Unlock()
	serves := s.Authorized(pi.ID, ch)
	if s.friendProved(pi.ID, ch, serves) {
		s.saveFriends()
		if first && serves { // friendProved made it a proved friend
			s.log.Info("friend node connected", "peer", pi.ID, "channels", 1)
		}
	}
	return nil
}

func (s *Service) protect(p peer.ID, ch channel.ID) {
	s.mu.Lock()
	if s.protected[p] == nil {
		s.protected[p] = map[channel.ID]bool{}
	}
	s.protected[p][ch] = true
	s.mu.Unlock()
	s.h.ConnManager().Protect(p, protectTag)
}

func (s *Service) beginExchange(p peer.ID) func() {
	s.mu.Lock()
	pe := s.pending[p]
	if pe == nil {
		pe = &pendingExchange{done: make(chan struct{})}
		s.pending[p] = pe
	}
	pe.n++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		pe.n--
		if pe.n == 0 {
			close(pe.done)
			delete(s.pending, p)
		}
	}
}

// exchange shows p our statements and reads p's. It returns, per channel
// asked, nil if p is now authorized for it or why not.
func (s *Service) exchange(ctx context.Context, p peer.ID, mine []*Statement) (map[channel.ID]error, error) {
	frame, err := encodeFrame(mine)
	if err != nil {
		return nil, err
	}
	st, err := s.h.NewStream(ctx, p, AuthzProtocol)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrNotAuthorized, AuthzProtocol, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if _, err := st.Write(frame); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("%w: send statements: %v", ErrNotAuthorized, err)
	}
	_ = st.CloseWrite()
	theirs, err := readFrame(st)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("%w: read statements: %w", ErrNotAuthorized, err)
	}
	errs := map[channel.ID]error{}
	for _, m := range mine {
		errs[m.Channel] = fmt.Errorf("%w: %s showed no statement for %s", ErrNotAuthorized, p.ShortString(), short(m.Channel))
	}
	now := s.cfg.Now()
	for _, t := range theirs {
		if _, asked := errs[t.Channel]; !asked {
			// Only channels we asked about count; anything else is noise.
			continue
		}
		if err := VerifyStatement(t, t.Channel, p, now); err != nil {
			errs[t.Channel] = err
			continue
		}
		s.record(p, t)
		errs[t.Channel] = nil
	}
	return errs, nil
}

// record remembers that p proved, with st, that it serves st's channel.
// Only channels this node serves are remembered (a proof for anything else
// authorizes nothing here), for at most MaxStatementValidity, within
// MaxAuthzPerPeer per peer and MaxAuthz in total; it reports whether st
// was kept.
func (s *Service) record(p peer.ID, st *Statement) bool {
	now := s.cfg.Now()
	until := clampUntil(st.Until, now)
	s.mu.Lock()
	if sv := s.served[st.Channel]; sv == nil || !now.Before(sv.until) {
		s.mu.Unlock()
		return false
	}
	chs := s.authz[p]
	old, had := chs[st.Channel]
	if !had && (len(chs) >= s.cfg.MaxAuthzPerPeer || s.authzN >= s.cfg.MaxAuthz) {
		s.pruneAuthzLocked(now)
		chs = s.authz[p]
		if len(chs) >= s.cfg.MaxAuthzPerPeer || s.authzN >= s.cfg.MaxAuthz {
			s.mu.Unlock()
			s.log.Debug("authz: statement not kept, over the bound", "peer", p,
				"per_peer", s.cfg.MaxAuthzPerPeer, "total", s.cfg.MaxAuthz)
			return false
		}
	}
	if chs == nil {
		chs = map[channel.ID]time.Time{}
		s.authz[p] = chs
	}
	if !had {
		s.authzN++
	}
	fresh := !now.Before(old)
	if until.After(old) {
		chs[st.Channel] = until
	}
	s.mu.Unlock()
	s.remember(p)
	if fresh && s.cfg.Node != nil {
		go s.cfg.Node.PeerAuthorized(p, st.Channel)
	}
	return true
}

// pruneAuthzLocked drops expired proofs and those for channels no longer
// served.
func (s *Service) pruneAuthzLocked(now time.Time) {
	for p, chs := range s.authz {
		for ch, until := range chs {
			if sv := s.served[ch]; !now.Before(until) || sv == nil || !now.Before(sv.until) {
				delete(chs, ch)
				s.authzN--
			}
		}
		if len(chs) == 0 {
			delete(s.authz, p)
		}
	}
}

// handleAuthz answers a peer's statements with ours for the channels it
// proved and we serve.
func (s *Service) handleAuthz(st network.Stream) {
	p := st.Conn().RemotePeer()
	done := s.beginExchange(p)
	defer done()
	_ = st.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	theirs, err := readFrame(st)
	if err != nil {
		s.log.Debug("authz: bad request", "peer", p, "err", err)
		_ = st.Reset()
		return
	}
	now := s.cfg.Now()
	var reply []*Statement
	save := false
	defer func() {
		if save {
			s.saveFriends()
		}
	}()
	for _, t := range theirs {
		if err := VerifyStatement(t, t.Channel, p, now); err != nil {
			// Debug: anyone may send garbage, and the journal is on an SD card.
			s.log.Debug("authz: refused statement", "peer", p, "channel", short(t.Channel), "err", err)
			continue
		}
		// record keeps the proof only for a channel this node serves and
		// within its bounds; only then is it shown ours.
		kept := s.record(p, t)
		s.mu.Lock()
		sv := s.served[t.Channel]
		s.mu.Unlock()
		serves := kept && sv != nil && now.Before(sv.until)
		// A node that proved a channel this node serves is kept as a
		// friend, so that either side finds the other after a restart.
		if s.friendProved(p, t.Channel, serves) {
			save = true
		}
		if serves {
			reply = append(reply, sv.st)
			s.noteShown(p, t.Channel)
		}
	}
	frame, err := encodeFrame(reply)
	if err != nil {
		_ = st.Reset()
		return
	}
	if _, err := st.Write(frame); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// provideLoop provides the keys of every served channel that are due:
// never provided, or last provided ReprovideInterval ago. Rotation falls
// out of it: a new day's key is due the moment it is wanted.
func (s *Service) provideLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(min(s.cfg.MaintainInterval, time.Minute))
	defer tick.Stop()
	lastSave := time.Now()
	var retry <-chan time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-retry:
		case <-s.provideKick:
		}
		retry = nil
		if s.provideDue() > 0 {
			// A failed provide (empty table at start, a timeout) is
			// retried soon, not an interval later.
			retry = time.After(provideRetry)
		}
		if time.Since(lastSave) >= s.cfg.PersistInterval {
			s.savePeers()
			s.saveFriends()
			lastSave = time.Now()
		}
	}
}

// provideRetry is the wait before failed provides are tried again.
const provideRetry = 3 * time.Second

// provideDue provides the due keys and returns how many failed.
func (s *Service) provideDue() (failed int) {
	now := s.cfg.Now()
	type job struct {
		ch  channel.ID
		day Day
	}
	var jobs []job
	s.mu.Lock()
	for ch, sv := range s.served {
		if !now.Before(sv.until) {
			continue
		}
		want := provideDays(now, s.cfg.BoundaryWindow)
		for d := range sv.provided {
			if !slices.Contains(want, d) {
				delete(sv.provided, d)
			}
		}
		for _, d := range want {
			if last, ok := sv.provided[d]; !ok || now.Sub(last) >= s.cfg.ReprovideInterval {
				jobs = append(jobs, job{ch, d})
			}
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LookupTimeout)
		err := s.dht.Provide(ctx, ProvideKey(j.ch, j.day), true)
		cancel()
		if s.ctx.Err() != nil {
			return failed
		}
		if err != nil {
			s.log.Debug("provide failed; retried soon", "channel", short(j.ch), "day", j.day, "err", err)
			failed++
			continue
		}
		s.mu.Lock()
		if sv := s.served[j.ch]; sv != nil {
			sv.provided[j.day] = now
		}
		s.mu.Unlock()
	}
	return failed
}

// maintainLoop keeps MinPeers..MaxPeers authorized super nodes connected
// per served channel.
func (s *Service) maintainLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.MaintainInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.maintainKick:
		}
		s.mu.Lock()
		s.pruneAuthzLocked(s.cfg.Now())
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, ch := range s.Served() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.maintain(ch)
			}()
		}
		wg.Wait()
	}
}

// maintain tops up ch's super nodes: dial again the ones that proved ch
// before (redial), then look providers up, try the ones already
// connected first, then the others in random order, at most MaxAttempts
// of them per round, skipping those that failed recently.
func (s *Service) maintain(ch channel.ID) {
	have := s.SyncPeers(ch)
	if len(have) < s.cfg.MinPeers && s.redial(ch, have) > 0 {
		have = s.SyncPeers(ch)
	}
	if len(have) >= s.cfg.MinPeers || !s.lookupDue(ch, len(have)) {
		return
	}
	s.lookups.Add(1)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LookupTimeout)
	pis, err := s.Providers(ctx, ch)
	cancel()
	if err != nil {
		s.log.Debug("provider lookup", "channel", short(ch), "err", err)
		s.lookedUp(ch, false, len(have), nil)
		return
	}
	more := false           // candidates left for the next round
	var elsewhere []peer.ID // providers other than the connected super nodes
	defer func() { s.lookedUp(ch, more || len(s.SyncPeers(ch)) > len(have), len(have), elsewhere) }()
	now := time.Now()
	s.mu.Lock()
	bad := s.backoff[ch]
	for p, until := range bad {
		if now.After(until) {
			delete(bad, p)
		}
	}
	var connected, others []peer.AddrInfo
	for _, pi := range pis {
		if slices.Contains(have, pi.ID) {
			continue
		}
		elsewhere = append(elsewhere, pi.ID)
		if _, skip := bad[pi.ID]; skip {
			continue
		}
		if s.h.Network().Connectedness(pi.ID) == network.Connected {
			connected = append(connected, pi)
		} else {
			others = append(others, pi)
		}
	}
	s.mu.Unlock()
	// Random order, so that whoever floods the key with fake providers
	// cannot also decide which ones are tried first.
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	cands := append(connected, others...)
	left := len(cands) - s.cfg.MaxAttempts
	more = left > 0
	if len(cands) > s.cfg.MaxAttempts {
		cands = cands[:s.cfg.MaxAttempts]
	}
	need := int32(s.cfg.MaxPeers - len(have))
	var got atomic.Int32
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, pi := range cands {
		if got.Load() >= need {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if got.Load() >= need {
				return
			}
			if err := s.connect(s.ctx, pi, ch); err != nil {
				s.log.Debug("provider refused", "channel", short(ch), "peer", pi.ID, "err", err)
				s.mu.Lock()
				if s.backoff[ch] == nil {
					s.backoff[ch] = map[peer.ID]time.Time{}
				}
				s.backoff[ch][pi.ID] = time.Now().Add(s.cfg.FailureBackoff)
				s.mu.Unlock()
				return
			}
			got.Add(1)
		}()
	}
	wg.Wait()
	if n := got.Load(); n > 0 {
		s.log.Info("super nodes added for channel", "channel", short(ch), "added", n, "now", len(have)+int(n))
	}
	if len(have)+int(got.Load()) < s.cfg.MinPeers && left > 0 {
		// More candidates are left: go again soon rather than in a full
		// interval, still MaxAttempts at a time.
		s.kick(s.maintainKick)
	}
}

// Refresh runs the provide and upkeep rounds now instead of at the next
// tick (after a registration, a network change, or in tests).
func (s *Service) Refresh() {
	s.mu.Lock()
	for _, sv := range s.served {
		sv.lookup = lookupWait{}
	}
	s.mu.Unlock()
	s.kick(s.provideKick)
	s.kick(s.maintainKick)
}

// lookupDue reports whether ch's providers may be looked up now, with
// have super nodes connected (idle.go).
func (s *Service) lookupDue(ch channel.ID, have int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.served[ch]
	return sv != nil && sv.lookup.due(have, time.Now())
}

// lookedUp sets when ch is looked up next (idle.go): at the next round if
// the lookup found a super node, else after a wait that doubles from
// MaintainInterval up to MaxLookupBackoff, and not before the first of
// the providers found elsewhere that failed lately may be dialled again.
func (s *Service) lookedUp(ch channel.ID, found bool, have int, elsewhere []peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.served[ch]
	if sv == nil {
		return
	}
	var retry time.Time
	for _, p := range elsewhere {
		if until, ok := s.backoff[ch][p]; ok && (retry.IsZero() || until.Before(retry)) {
			retry = until
		}
	}
	sv.lookup.done(found, have, retry, time.Now(), s.cfg.MaintainInterval, s.cfg.MaxLookupBackoff)
}
