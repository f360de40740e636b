package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Friend nodes are the friend graph as bootstrap (DESIGN.md): super nodes
// this node's registered users introduced (IntroduceProtocol), and super
// nodes that dialled this node and proved they serve a channel it serves.
// They are dialled first, kept connected for the channels they share,
// used as DHT bootstrap peers and kept across restarts (Meta "friends"),
// apart from the routing table's anonymous peers.
//
// Every entry comes from a remote peer, so the table is bounded: in total,
// per introducer, for proof-learned entries, in channels, introducers and
// addresses per entry, and in time.
const (
	// MaxFriends bounds the table.
	MaxFriends = 128
	// MaxFriendsPerIntroducer bounds the entries one registered user keeps
	// in the table: a new introduction past it takes the place of that
	// user's oldest.
	MaxFriendsPerIntroducer = 32
	// MaxFriendsFromProof bounds the entries no user introduced (nodes
	// that dialled this one and proved a shared channel).
	MaxFriendsFromProof = 64
	// FriendLifetime: an entry not introduced, seen or proved for this
	// long is forgotten.
	FriendLifetime = 30 * 24 * time.Hour
	// UnprovenFriendLifetime: an introduced node never reached is
	// forgotten this long after its last introduction (clients introduce
	// their nodes again every day while they use them).
	UnprovenFriendLifetime = 7 * 24 * time.Hour

	maxFriendChannels    = 32
	maxFriendIntroducers = 8
	maxFriendAddrs       = 2 * hint.MaxEntries
	friendRetryMin       = 2 * time.Second
)

var friendsKey = []byte("friends")

type friend struct {
	addrs    []multiaddr.Multiaddr
	channels map[channel.ID]time.Time // named by an introducer or proved by the friend: when last
	by       map[peer.ID]time.Time    // registered users who introduced it: when last
	proved   time.Time                // last statement for a channel this node serves
	seen     time.Time                // last connected
	added    time.Time

	// Run time only.
	next    time.Time // no dial before (backoff, wall clock)
	wait    time.Duration
	dialled bool                // connected in this run (then a bootstrap peer)
	shown   map[channel.ID]bool // our statement was taken on the current connection
}

func newFriend(now time.Time) *friend {
	return &friend{channels: map[channel.ID]time.Time{}, by: map[peer.ID]time.Time{}, added: now, shown: map[channel.ID]bool{}}
}

// last is when the entry was last confirmed useful.
func (f *friend) last() time.Time {
	t := f.added
	for _, x := range []time.Time{f.proved, f.seen} {
		if x.After(t) {
			t = x
		}
	}
	for _, x := range f.by {
		if x.After(t) {
			t = x
		}
	}
	return t
}

func (f *friend) expired(now time.Time) bool {
	life := UnprovenFriendLifetime
	if !f.proved.IsZero() || !f.seen.IsZero() {
		life = FriendLifetime
	}
	return now.Sub(f.last()) > life
}

// Friend describes an entry of the friend table.
type Friend struct {
	ID          peer.ID
	Addrs       []multiaddr.Multiaddr
	Channels    []channel.ID
	Introducers int       // registered users who introduced it (0: it proved a channel by itself)
	Proved      time.Time // last proof of a channel this node serves; zero: never
	Seen        time.Time // last connected; zero: never
	Connected   bool
}

// Friends lists the friend table.
func (s *Service) Friends() []Friend {
	s.mu.Lock()
	out := make([]Friend, 0, len(s.friends))
	for p, f := range s.friends {
		out = append(out, Friend{ID: p, Addrs: slices.Clone(f.addrs), Channels: slices.Collect(maps.Keys(f.channels)),
			Introducers: len(f.by), Proved: f.proved, Seen: f.seen})
	}
	s.mu.Unlock()
	for i := range out {
		out[i].Connected = s.h.Network().Connectedness(out[i].ID) == network.Connected
	}
	slices.SortFunc(out, func(a, b Friend) int { return b.Proved.Compare(a.Proved) })
	return out
}

// introduced adds or refreshes the node a registered user introduced. It
// reports whether there was news (a new node, introducer, address or
// channel): a mere refresh is saved with the periodic save.
func (s *Service) introduced(by peer.ID, in Introduction) (Verdict, bool) {
	p := in.Node.ID
	if p == "" || p == s.h.ID() || p == by {
		return IntroInvalid, false
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneFriendsLocked(now)
	f := s.friends[p]
	fresh := f == nil
	if fresh {
		if !s.roomLocked(false) {
			return IntroFull, false
		}
		f = newFriend(now)
		s.friends[p] = f
	}
	_, known := f.by[by]
	if !known {
		s.limitIntroducerLocked(by, p)
		f.by[by] = now
		trimOldest(f.by, maxFriendIntroducers)
	} else {
		f.by[by] = now
	}
	addrs := len(f.addrs)
	f.addrs = capAddrs(mergeAddrs(slices.Clone(in.Node.Addrs), f.addrs))
	news := false
	for _, ch := range in.Channels {
		if _, ok := f.channels[ch]; !ok {
			news = true
		}
		f.channels[ch] = now
	}
	trimOldest(f.channels, maxFriendChannels)
	// Only news makes it due at once: introducing the same node over and
	// over must not make this node dial it over and over.
	changed := fresh || news || !known || len(f.addrs) != addrs
	if changed {
		f.next, f.wait = time.Time{}, 0
	}
	return IntroAccepted, changed
}

// friendProved records that p proved it serves ch (a statement naming it,
// shown over the authz protocol). A node that serves ch keeps p as a
// friend; a proof for a channel it does not serve only refreshes an entry
// it already has. It reports whether the table changed in a way worth
// saving.
func (s *Service) friendProved(p peer.ID, ch channel.ID, serves bool) bool {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.friends[p]
	if f == nil {
		if !serves {
			return false
		}
		s.pruneFriendsLocked(now)
		if !s.roomLocked(true) {
			return false
		}
		f = newFriend(now)
		s.friends[p] = f
	}
	f.addrs = s.freshAddrs(p, f.addrs)
	_, had := f.channels[ch]
	f.channels[ch] = now
	trimOldest(f.channels, maxFriendChannels)
	first := f.proved.IsZero()
	if serves {
		f.proved = now
	}
	f.seen = now
	return !had || (serves && first)
}

// roomLocked makes room for one more entry, evicting if it must: a
// proof-learned entry takes the place of the oldest proof-learned one
// (one never proved first); an introduced one the oldest never proved.
func (s *Service) roomLocked(fromProof bool) bool {
	fromProofs := 0
	for _, f := range s.friends {
		if len(f.by) == 0 {
			fromProofs++
		}
	}
	full := len(s.friends) >= MaxFriends
	if fromProof && fromProofs >= MaxFriendsFromProof {
		full = true
	}
	if !full {
		return true
	}
	var victim peer.ID
	var vf *friend
	for p, f := range s.friends {
		if fromProof && len(f.by) > 0 {
			continue
		}
		if !fromProof && !f.proved.IsZero() {
			continue
		}
		if vf == nil || worse(f, vf) {
			victim, vf = p, f
		}
	}
	if vf == nil {
		return false
	}
	s.dropFriendLocked(victim)
	return true
}

// worse: never proved before proved, then the older.
func worse(a, b *friend) bool {
	if a.proved.IsZero() != b.proved.IsZero() {
		return a.proved.IsZero()
	}
	return a.last().Before(b.last())
}

// limitIntroducerLocked keeps by's entries under MaxFriendsPerIntroducer
// (p, the node being introduced, aside): by's oldest introduction is
// withdrawn, and the entry goes if nothing else holds it.
func (s *Service) limitIntroducerLocked(by, p peer.ID) {
	var n int
	var oldest peer.ID
	var at time.Time
	for q, f := range s.friends {
		t, ok := f.by[by]
		if !ok || q == p {
			continue
		}
		n++
		if oldest == "" || t.Before(at) {
			oldest, at = q, t
		}
	}
	if n < MaxFriendsPerIntroducer {
		return
	}
	f := s.friends[oldest]
	delete(f.by, by)
	if len(f.by) == 0 && f.proved.IsZero() {
		s.dropFriendLocked(oldest)
	}
}

func (s *Service) dropFriendLocked(p peer.ID) {
	delete(s.friends, p)
	s.log.Debug("friend node forgotten", "peer", p)
}

// pruneFriendsLocked forgets expired entries, introductions and channels.
func (s *Service) pruneFriendsLocked(now time.Time) bool {
	changed := false
	for p, f := range s.friends {
		for q, t := range f.by {
			if now.Sub(t) > FriendLifetime {
				delete(f.by, q)
				changed = true
			}
		}
		for ch, t := range f.channels {
			if now.Sub(t) > FriendLifetime {
				delete(f.channels, ch)
				changed = true
			}
		}
		if f.expired(now) {
			s.dropFriendLocked(p)
			changed = true
		}
	}
	return changed
}

// trimOldest deletes the oldest entries of m until it has at most n.
func trimOldest[K comparable](m map[K]time.Time, n int) {
	for len(m) > n {
		var oldest K
		var at time.Time
		first := true
		for k, t := range m {
			if first || t.Before(at) {
				oldest, at, first = k, t, false
			}
		}
		delete(m, oldest)
	}
}

// freshAddrs are the addresses to remember for p: what the peerstore
// knows now (identify's, after a connection) and then old, the best
// hint.MaxEntries address entries of them.
func (s *Service) freshAddrs(p peer.ID, old []multiaddr.Multiaddr) []multiaddr.Multiaddr {
	n, err := hint.Pick(p, append(s.h.Peerstore().Addrs(p), old...), hint.MaxEntries)
	if err != nil || len(n.Addrs) == 0 {
		return old
	}
	return n.Addrs
}

func capAddrs(as []multiaddr.Multiaddr) []multiaddr.Multiaddr {
	if len(as) > maxFriendAddrs {
		as = as[:maxFriendAddrs]
	}
	return as
}

// friendBootstrapLocked are the friends with addresses, the most recently
// seen, proved or introduced first, for kad-dht's bootstrap.
func (s *Service) friendBootstrapLocked() []peer.AddrInfo {
	type fp struct {
		p peer.ID
		f *friend
	}
	var fs []fp
	for p, f := range s.friends {
		if len(f.addrs) > 0 {
			fs = append(fs, fp{p, f})
		}
	}
	slices.SortFunc(fs, func(a, b fp) int { return b.f.last().Compare(a.f.last()) })
	out := make([]peer.AddrInfo, 0, len(fs))
	for _, x := range fs {
		out = append(out, peer.AddrInfo{ID: x.p, Addrs: slices.Clone(x.f.addrs)})
	}
	return out
}

// friendLoop keeps the friends connected: at start, on a kick (an
// introduction, a newly served channel) and every MaintainInterval.
func (s *Service) friendLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.MaintainInterval)
	defer tick.Stop()
	for {
		s.friendRound()
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.friendKick:
		}
	}
}

type friendJob struct {
	pi     peer.AddrInfo
	shared []channel.ID
	dial   bool // not connected: dial (and show every shared statement)
}

// friendRound dials the friends that are due: not connected while they
// share a served channel (or, introduced ones, not yet reached in this
// run), or connected with a shared channel not yet proved both ways.
func (s *Service) friendRound() {
	now, wall := s.cfg.Now(), time.Now()
	served := map[channel.ID]bool{}
	for _, ch := range s.Served() {
		served[ch] = true
	}
	var jobs []friendJob
	var bootstrap []peer.AddrInfo
	s.mu.Lock()
	dirty := s.pruneFriendsLocked(now)
	for p, f := range s.friends {
		if wall.Before(f.next) {
			continue
		}
		var shared []channel.ID
		for ch := range f.channels {
			if served[ch] {
				shared = append(shared, ch)
			}
		}
		connected := s.h.Network().Connectedness(p) == network.Connected
		pi := peer.AddrInfo{ID: p, Addrs: slices.Clone(f.addrs)}
		if connected && !f.dialled {
			// It dialled us, or the DHT did: a bootstrap peer all the same.
			f.dialled = true
			bootstrap = append(bootstrap, pi)
		}
		switch {
		case !connected && (len(shared) > 0 || (len(f.by) > 0 && !f.dialled)):
			jobs = append(jobs, friendJob{pi: pi, shared: shared, dial: true})
		case connected && len(shared) > 0:
			for _, ch := range shared {
				if !f.shown[ch] || !s.authorizedLocked(p, ch, now) {
					jobs = append(jobs, friendJob{pi: pi, shared: shared})
					break
				}
			}
		}
	}
	s.mu.Unlock()
	if dirty {
		s.saveFriends()
	}
	for _, pi := range bootstrap {
		s.AddBootstrap(pi)
	}
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
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
			s.connectFriend(j)
		}()
	}
	wg.Wait()
}

func (s *Service) authorizedLocked(p peer.ID, ch channel.ID, now time.Time) bool {
	until, ok := s.authz[p][ch]
	return ok && now.Before(until)
}

// connectFriend dials a friend (looking it up in the DHT when no address
// is known) and shows it the statements of the shared channels.
func (s *Service) connectFriend(j friendJob) {
	p := j.pi.ID
	if len(j.shared) > 0 {
		done := s.beginExchange(p)
		defer done()
	}
	if j.dial {
		if len(j.pi.Addrs) == 0 && len(s.h.Peerstore().Addrs(p)) == 0 {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LookupTimeout)
			found, err := s.dht.FindPeer(ctx, p)
			cancel()
			if err != nil {
				s.friendFailed(p, fmt.Errorf("no address, and not found in the DHT: %w", err))
				return
			}
			j.pi.Addrs = found.Addrs
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
		err := s.h.Connect(ctx, j.pi)
		cancel()
		if err != nil {
			s.friendFailed(p, fmt.Errorf("dial: %w", err))
			return
		}
	}
	first := s.friendReached(p, j.dial)
	if first {
		// A friend is the best DHT bootstrap peer this node has.
		s.AddBootstrap(peer.AddrInfo{ID: p, Addrs: s.h.Peerstore().Addrs(p)})
	}
	if len(j.shared) == 0 {
		return
	}
	var mine []*Statement
	now := s.cfg.Now()
	s.mu.Lock()
	for _, ch := range j.shared {
		if sv := s.served[ch]; sv != nil && now.Before(sv.until) {
			mine = append(mine, sv.st)
		}
	}
	s.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	errs, err := s.exchange(ctx, p, mine)
	cancel()
	if err != nil {
		s.friendFailed(p, err)
		return
	}
	var ok []channel.ID
	var refused error
	for ch, e := range errs {
		if e == nil {
			s.protect(p, ch)
			ok = append(ok, ch)
		} else {
			refused = e
		}
	}
	save := s.friendShown(p, ok, refused == nil)
	if len(ok) > 0 && (first || save) {
		s.log.Info("friend node connected", "peer", p, "channels", len(ok))
	}
	if refused != nil {
		s.log.Debug("friend node did not prove every shared channel; retried later", "peer", p, "proved", len(ok), "of", len(mine), "err", refused)
	}
	if save {
		s.saveFriends()
	}
}

// friendReached records a connection; it reports whether it is the first
// in this run.
func (s *Service) friendReached(p peer.ID, dialled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.friends[p]
	if f == nil {
		return false
	}
	f.seen = s.cfg.Now()
	if dialled {
		clear(f.shown) // a new connection: the other side may have restarted
	}
	f.addrs = s.freshAddrs(p, f.addrs)
	first := !f.dialled
	f.dialled = true
	return first
}

// friendShown records the channels both sides proved; complete says all
// shared ones were. It reports whether the entry changed worth saving.
func (s *Service) friendShown(p peer.ID, ok []channel.ID, complete bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.friends[p]
	if f == nil {
		return false
	}
	save := false
	if len(ok) > 0 {
		save = f.proved.IsZero()
		f.proved = s.cfg.Now()
	}
	for _, ch := range ok {
		f.shown[ch] = true
		f.channels[ch] = s.cfg.Now()
	}
	if complete {
		f.next, f.wait = time.Time{}, 0
	} else {
		s.backoffLocked(f)
	}
	return save
}

func (s *Service) friendFailed(p peer.ID, err error) {
	s.mu.Lock()
	f := s.friends[p]
	if f != nil {
		s.backoffLocked(f)
	}
	s.mu.Unlock()
	if f != nil && s.ctx.Err() == nil {
		s.log.Debug("friend node not reached", "peer", p, "retry_in", f.wait, "err", err)
	}
}

// backoffLocked doubles the wait before the next try, from friendRetryMin
// to FailureBackoff.
func (s *Service) backoffLocked(f *friend) {
	f.wait = min(max(2*f.wait, friendRetryMin), s.cfg.FailureBackoff)
	f.next = time.Now().Add(f.wait)
}

// noteShown records that our statement for ch was given to p (we answered
// its authz request with it).
func (s *Service) noteShown(p peer.ID, ch channel.ID) {
	s.mu.Lock()
	if f := s.friends[p]; f != nil {
		f.shown[ch] = true
	}
	s.mu.Unlock()
}

type savedFriend struct {
	ID       string           `json:"id"`
	Addrs    []string         `json:"addrs,omitempty"`
	Channels map[string]int64 `json:"channels,omitempty"` // channel ID -> Unix s
	By       map[string]int64 `json:"by,omitempty"`       // introducer peer ID -> Unix s
	Proved   int64            `json:"proved,omitempty"`
	Seen     int64            `json:"seen,omitempty"`
	Added    int64            `json:"added"`
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// saveFriends writes the friend table to Meta.
func (s *Service) saveFriends() {
	if s.cfg.Meta == nil {
		return
	}
	s.mu.Lock()
	saved := make([]savedFriend, 0, len(s.friends))
	for p, f := range s.friends {
		if s.h.Network().Connectedness(p) == network.Connected {
			f.addrs = s.freshAddrs(p, f.addrs)
		}
		sf := savedFriend{ID: p.String(), Channels: map[string]int64{}, By: map[string]int64{},
			Proved: unix(f.proved), Seen: unix(f.seen), Added: unix(f.added)}
		for _, a := range f.addrs {
			sf.Addrs = append(sf.Addrs, a.String())
		}
		for ch, t := range f.channels {
			sf.Channels[ch.String()] = unix(t)
		}
		for q, t := range f.by {
			sf.By[q.String()] = unix(t)
		}
		saved = append(saved, sf)
	}
	s.mu.Unlock()
	b, err := json.Marshal(saved)
	if err == nil {
		err = s.cfg.Meta.Put(friendsKey, b)
	}
	if err != nil {
		s.log.Warn("saving friend nodes", "err", err)
	}
}

// loadFriends reads the friend table saved before a restart. What cannot
// be read is logged and left out: it costs a slower rejoin, nothing more.
func (s *Service) loadFriends() map[peer.ID]*friend {
	out := map[peer.ID]*friend{}
	if s.cfg.Meta == nil {
		return out
	}
	b, err := s.cfg.Meta.Get(friendsKey)
	if errors.Is(err, store.ErrNotFound) {
		return out
	}
	if err != nil {
		s.log.Warn("reading saved friend nodes", "err", err)
		return out
	}
	fs, err := decodeFriends(b, s.cfg.Now())
	if err != nil {
		s.log.Warn("saved friend nodes partly unreadable", "err", err)
	}
	return fs
}

// decodeFriends decodes a saved table, within the table's bounds.
func decodeFriends(b []byte, now time.Time) (map[peer.ID]*friend, error) {
	out := map[peer.ID]*friend{}
	var saved []savedFriend
	if err := json.Unmarshal(b, &saved); err != nil {
		return out, fmt.Errorf("%w: saved friends: %v", ErrMalformed, err)
	}
	var bad error
	for _, sf := range saved {
		if len(out) == MaxFriends {
			break
		}
		id, err := peer.Decode(sf.ID)
		if err != nil {
			bad = fmt.Errorf("%w: saved friend %q: %v", ErrMalformed, sf.ID, err)
			continue
		}
		f := newFriend(fromUnix(sf.Added))
		f.proved, f.seen = fromUnix(sf.Proved), fromUnix(sf.Seen)
		for _, a := range sf.Addrs {
			if ma, err := multiaddr.NewMultiaddr(a); err == nil && len(f.addrs) < maxFriendAddrs {
				f.addrs = append(f.addrs, ma)
			}
		}
		for k, t := range sf.Channels {
			if ch, err := channel.ParseID(k); err == nil {
				f.channels[ch] = fromUnix(t)
			}
		}
		trimOldest(f.channels, maxFriendChannels)
		for k, t := range sf.By {
			if q, err := peer.Decode(k); err == nil {
				f.by[q] = fromUnix(t)
			}
		}
		trimOldest(f.by, maxFriendIntroducers)
		if !f.expired(now) {
			out[id] = f
		}
	}
	return out, bad
}
