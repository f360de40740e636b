package client

import (
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// Finding a contact through friends (paper §4.3). The asker hashes the
// address locally and posts a query (control 'Q') into its channels with
// friends. A friend's running client answers (control 'A', in the same
// channel) only if its address book vouches for that hash, with the
// contact's identity sealed to a one-time key of the query, so that other
// members of a group channel learn nothing from the answer. It never
// forwards a query (one hop, like friend paths), answers at most
// lookupBurst queries per asker per lookupRateWindow, and otherwise says
// nothing: silence is all a no leaks, and silence is also what an offline
// friend gives.
//
// The asker's path handle is the channel an answer came through: that is
// what `friends agree --via` takes, and the friend's client finds its own
// channel with the contact by authorship when it forwards (friendpath.go),
// so the answer carries nothing about the friend's channels.

const (
	lookupVersion      = control.LookupVersion
	lookupIDSize       = control.LookupIDSize
	contactHashSize    = control.ContactHashSize
	lookupQuerySize    = control.LookupQuerySize
	lookupAnswerHeader = control.LookupAnswerHeader
	lookupAnswerSize   = control.LookupAnswerSize

	lookupBurst      = 10               // queries answered per asker per window
	lookupRateWindow = 10 * time.Minute //
	lookupMaxAge     = 2 * time.Minute  // older queries (a catch-up) are not answered
	lookupMaxSkew    = time.Minute      // queries from further ahead are not answered
	maxOpenLookups   = 8                // queries one client waits on at once
	maxLookupAnswers = 64               // answers kept per query
	maxSeenQueries   = 1024             // query IDs a responder remembers
	// DefaultLookupWait is how long Contacts.Find collects answers.
	DefaultLookupWait = 10 * time.Second

	labelLookupAnswer = "redpanda/v2/contact-answer"
)

// Errors of the contact lookup.
var (
	// ErrBadLookup: a query or answer does not parse, has another
	// version, or an answer does not open with its query's key.
	ErrBadLookup = errors.New("client: bad contact lookup message")
	// ErrUnknownQuery: an answer to a query this client did not send,
	// no longer waits for, or did not send into that channel.
	ErrUnknownQuery = errors.New("client: answer to a query not asked")
	// ErrReplayedAnswer: the same friend answered the same query twice.
	ErrReplayedAnswer = errors.New("client: contact lookup answer replayed")
	// ErrNoFriendChannels: there is no channel to ask through.
	ErrNoFriendChannels = errors.New("client: no friend channels to ask")
)

// The query and the answer (node/control).
type (
	lookupQuery  = control.ContactQuery
	lookupAnswer = control.ContactAnswer
)

// decodeLookupQuery parses a control body that starts with
// control.LookupQuery.
func decodeLookupQuery(b []byte) (lookupQuery, error) {
	q, err := control.DecodeContactQuery(b)
	if err != nil {
		return q, fmt.Errorf("%w: %w", ErrBadLookup, err)
	}
	return q, nil
}

// decodeLookupAnswer parses a control body that starts with
// control.LookupAnswer; the sealed part is opened by openLookupAnswer.
func decodeLookupAnswer(b []byte) (lookupAnswer, error) {
	a, err := control.DecodeContactAnswer(b)
	if err != nil {
		return a, fmt.Errorf("%w: %w", ErrBadLookup, err)
	}
	return a, nil
}

// answerKey derives the key that seals one answer: from the X25519 shared
// secret of the two one-time keys, bound to the query and its hash, so an
// answer cannot be moved to another query.
func answerKey(shared []byte, id [lookupIDSize]byte, hash [contactHashSize]byte) []byte {
	info := labelLookupAnswer + "\x00" + string(hash[:])
	k, _ := hkdf.Key(sha256.New, shared, id[:], info, chacha20poly1305.KeySize)
	return k
}

// sealLookupAnswer answers query q with identity.
func sealLookupAnswer(q lookupQuery, identity channel.IdentityKey) (lookupAnswer, error) {
	askerPub, err := ecdh.X25519().NewPublicKey(q.Pub[:])
	if err != nil {
		return lookupAnswer{}, fmt.Errorf("%w: query key: %v", ErrBadLookup, err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return lookupAnswer{}, err
	}
	shared, err := eph.ECDH(askerPub)
	if err != nil {
		return lookupAnswer{}, fmt.Errorf("%w: query key: %v", ErrBadLookup, err)
	}
	a := lookupAnswer{ID: q.ID}
	copy(a.Pub[:], eph.PublicKey().Bytes())
	aead, _ := chacha20poly1305.New(answerKey(shared, q.ID, q.Hash))
	// The key is used once (a fresh one-time key per answer): a zero nonce is safe.
	a.Sealed = aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), identity[:], a.Header())
	return a, nil
}

// openLookupAnswer opens a with the asker's one-time key of the query.
func openLookupAnswer(a lookupAnswer, priv *ecdh.PrivateKey, hash [contactHashSize]byte) (channel.IdentityKey, error) {
	var id channel.IdentityKey
	pub, err := ecdh.X25519().NewPublicKey(a.Pub[:])
	if err != nil {
		return id, fmt.Errorf("%w: answer key: %v", ErrBadLookup, err)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return id, fmt.Errorf("%w: answer key: %v", ErrBadLookup, err)
	}
	aead, _ := chacha20poly1305.New(answerKey(shared, a.ID, hash))
	pt, err := aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), a.Sealed, a.Header())
	if err != nil || len(pt) != len(id) {
		return id, fmt.Errorf("%w: answer does not open with this query's key", ErrBadLookup)
	}
	copy(id[:], pt)
	return id, nil
}

// ContactAnswer is one friend's answer to a lookup.
type ContactAnswer struct {
	Identity string // the contact's identity ("rpi…"), as this friend says
	Friend   string // the friend who answered (identity)
	Via      string // local name of the channel the answer came through: a path to the contact
}

// LookupResult is what Contacts.Find collected.
type LookupResult struct {
	Hash         string          // the contact hash asked for, hex
	Asked        []string        // channels the query was posted in
	NotDelivered []string        // of those, channels no super node acknowledged
	Answers      []ContactAnswer // by identity, then channel
	// Identities are the distinct identities named. More than one is a
	// conflict: a friend lies (or vouches for the wrong person); the
	// multi-path agreement over the paths of one identity then protects
	// the user, as long as one path to that person is honest.
	Identities []string
	Conflict   bool
	Rejected   []string // answers refused, with why
}

// Via returns the channels through which friends named identity: the
// --via of `friends agree`.
func (r *LookupResult) Via(identity string) []string {
	var out []string
	for _, a := range r.Answers {
		if a.Identity == identity && !contains(out, a.Via) {
			out = append(out, a.Via)
		}
	}
	return out
}

// AgreeCommand is the command line that opens a channel named name with
// identity through the friends that vouched for it.
func (r *LookupResult) AgreeCommand(name, identity string) string {
	return fmt.Sprintf("redpanda friends agree %s --with %s --via %s", name, identity, strings.Join(r.Via(identity), ","))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// pendingLookup is a query this client waits on.
type pendingLookup struct {
	hash     [contactHashSize]byte
	priv     *ecdh.PrivateKey
	channels map[channel.ID]string // channel -> local name
	answers  []ContactAnswer
	from     map[string]bool // channel||friend that answered
	rejected []string
	changed  chan struct{}
}

type lookupStats struct {
	queries, answered, limited, stale, unknown, rejected int
}

// lookupState is a client's lookup state, kept beside the Client (as
// friendState is) and dropped when it closes.
type lookupState struct {
	mu      sync.Mutex
	pending map[[lookupIDSize]byte]*pendingLookup
	rate    map[channel.IdentityKey][]time.Time
	seen    map[[lookupIDSize]byte]time.Time // queries handled (answered or not)
	stats   lookupStats
}

var lookupStates sync.Map // *Client -> *lookupState

func (c *Client) lookups() *lookupState {
	if v, ok := lookupStates.Load(c); ok {
		return v.(*lookupState)
	}
	st := &lookupState{pending: map[[lookupIDSize]byte]*pendingLookup{},
		rate: map[channel.IdentityKey][]time.Time{}, seen: map[[lookupIDSize]byte]time.Time{}}
	v, loaded := lookupStates.LoadOrStore(c, st)
	if !loaded {
		go func() { <-c.ctx.Done(); lookupStates.Delete(c) }()
	}
	return v.(*lookupState)
}

// findContact implements Contacts.Find.
func (c *Client) findContact(ctx context.Context, address, defaultCC string, via []string, wait time.Duration) (*LookupResult, error) {
	norm, err := NormalizeAddress(address, defaultCC)
	if err != nil {
		return nil, fmt.Errorf("client.Contacts.Find: %w", err)
	}
	return c.findContactHash(ctx, ContactHash(norm), via, wait)
}

// findContactHash implements Contacts.FindHash.
func (c *Client) findContactHash(ctx context.Context, hash []byte, via []string, wait time.Duration) (*LookupResult, error) {
	if len(hash) != contactHashSize {
		return nil, fmt.Errorf("client.Contacts.Find: %w: hash of %d bytes", ErrBadContact, len(hash))
	}
	if wait <= 0 {
		wait = DefaultLookupWait
	}
	chans, err := c.lookupChannels(via)
	if err != nil {
		return nil, fmt.Errorf("client.Contacts.Find: %w", err)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var q lookupQuery
	_, _ = rand.Read(q.ID[:])
	copy(q.Hash[:], hash)
	copy(q.Pub[:], priv.PublicKey().Bytes())
	p := &pendingLookup{hash: q.Hash, priv: priv, channels: map[channel.ID]string{},
		from: map[string]bool{}, changed: make(chan struct{}, 1)}
	for _, cs := range chans {
		p.channels[cs.key.ID()] = cs.name
	}
	st := c.lookups()
	st.mu.Lock()
	if len(st.pending) >= maxOpenLookups {
		st.mu.Unlock()
		return nil, fmt.Errorf("client.Contacts.Find: %d lookups open already", len(st.pending))
	}
	st.pending[q.ID] = p // before posting: an answer may come back at once
	st.mu.Unlock()
	defer func() { st.mu.Lock(); delete(st.pending, q.ID); st.mu.Unlock() }()

	res := &LookupResult{Hash: hex.EncodeToString(hash)}
	body := q.Encode()
	for _, cs := range chans {
		res.Asked = append(res.Asked, cs.name)
		if _, err := c.post(ctx, cs, channel.KindControl, body); err != nil {
			if !errors.Is(err, ErrNotDelivered) {
				return nil, fmt.Errorf("client.Contacts.Find: %q: %w", cs.name, err)
			}
			res.NotDelivered = append(res.NotDelivered, cs.name)
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var waitErr error
collect:
	for {
		st.mu.Lock()
		answered := map[string]bool{}
		for _, a := range p.answers {
			answered[a.Via] = true
		}
		st.mu.Unlock()
		if len(answered) == len(chans) {
			break // every channel answered: nothing more to wait for
		}
		select {
		case <-p.changed:
		case <-timer.C:
			break collect
		case <-ctx.Done():
			waitErr = ctx.Err()
			break collect
		case <-c.ctx.Done():
			waitErr = ErrClosed
			break collect
		}
	}
	st.mu.Lock()
	res.Answers = append([]ContactAnswer(nil), p.answers...)
	res.Rejected = append([]string(nil), p.rejected...)
	st.mu.Unlock()
	sort.Slice(res.Answers, func(i, j int) bool {
		a, b := res.Answers[i], res.Answers[j]
		if a.Identity != b.Identity {
			return a.Identity < b.Identity
		}
		return a.Via < b.Via
	})
	for _, a := range res.Answers {
		if !contains(res.Identities, a.Identity) {
			res.Identities = append(res.Identities, a.Identity)
		}
	}
	res.Conflict = len(res.Identities) > 1
	if waitErr != nil {
		return res, fmt.Errorf("client.Contacts.Find: %w", waitErr)
	}
	return res, nil
}

// lookupChannels resolves via, or picks every friend channel.
func (c *Client) lookupChannels(via []string) ([]*chanState, error) {
	var out []*chanState
	if len(via) == 0 {
		c.mu.Lock()
		for _, cs := range c.chans {
			if cs.key.CanRead() && cs.key.CanWrite() && cs.name != MasterChannel && cs.name != NodeChannel && !strings.HasPrefix(cs.name, DustPrefix) {
				out = append(out, cs)
			}
		}
		c.mu.Unlock()
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		if len(out) == 0 {
			return nil, ErrNoFriendChannels
		}
		return out, nil
	}
	seen := map[channel.ID]bool{}
	for _, name := range via {
		cs, err := c.byName(name)
		if err != nil {
			return nil, err
		}
		if !cs.key.CanRead() || !cs.key.CanWrite() {
			return nil, fmt.Errorf("%q: %w", name, ErrCannotWrite)
		}
		if seen[cs.key.ID()] {
			return nil, fmt.Errorf("channel %q named twice", name)
		}
		seen[cs.key.ID()] = true
		out = append(out, cs)
	}
	return out, nil
}

// handleLookupQuery and handleLookupAnswer take a lookup query
// (control.LookupQuery) or answer (control.LookupAnswer). Called under
// procMu (control.go), so answering happens in the background.
func (c *Client) handleLookupQuery(cs *chanState, m *channel.Message) {
	if m.Author != c.self.Public() {
		c.lookupRefused(cs, m, c.answerLookup(cs, m.Author, m.Timestamp, m.Body))
	}
}

func (c *Client) handleLookupAnswer(cs *chanState, m *channel.Message) {
	if m.Author != c.self.Public() {
		c.lookupRefused(cs, m, c.takeLookupAnswer(cs, m.Author, m.Body))
	}
}

func (c *Client) lookupRefused(cs *chanState, m *channel.Message, err error) {
	if err != nil {
		c.log.Warn("contact lookup: message refused", "channel", cs.name, "author", m.Author, "err", err)
	}
}

// answerLookup is the friend's side: it answers a query if it may and
// vouches for the hash, and otherwise stays silent. Only malformed
// queries return an error (for the log); silence is not an error.
func (c *Client) answerLookup(cs *chanState, asker channel.IdentityKey, ts time.Time, body []byte) error {
	q, err := decodeLookupQuery(body)
	if err != nil {
		return err
	}
	st := c.lookups()
	now := c.cfg.Now()
	st.mu.Lock()
	st.stats.queries++
	if age := now.Sub(ts); age > lookupMaxAge || age < -lookupMaxSkew {
		st.stats.stale++
		st.mu.Unlock()
		return nil
	}
	for id, t := range st.seen {
		if now.Sub(t) > lookupMaxAge+lookupMaxSkew {
			delete(st.seen, id)
		}
	}
	if _, dup := st.seen[q.ID]; dup || len(st.seen) >= maxSeenQueries {
		st.stats.stale++
		st.mu.Unlock()
		return nil
	}
	st.seen[q.ID] = now
	recent := st.rate[asker][:0]
	for _, t := range st.rate[asker] {
		if now.Sub(t) < lookupRateWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= lookupBurst {
		st.rate[asker] = recent
		st.stats.limited++
		st.mu.Unlock()
		c.log.Warn("contact lookup: query rate exceeded; not answered", "author", asker)
		return nil
	}
	st.rate[asker] = append(recent, now)
	st.mu.Unlock()

	rec, contactCS, ok := c.vouchedContact(q.Hash[:])
	if !ok || contactCS.key.ID() == cs.key.ID() || rec.Identity == asker.String() {
		// Not known, the channel with the contact is gone, the query came
		// through that very channel, or the asker is the contact: silence.
		st.mu.Lock()
		st.stats.unknown++
		st.mu.Unlock()
		return nil
	}
	id, err := channel.ParseIdentityKey(rec.Identity)
	if err != nil {
		return fmt.Errorf("contact record: %w", err)
	}
	a, err := sealLookupAnswer(q, id)
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.stats.answered++
	st.mu.Unlock()
	if _, err := c.postLater(cs, channel.KindControl, a.Encode()); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("answer not stored: %w", err)
	}
	return nil
}

// takeLookupAnswer is the asker's side: it checks an answer against the
// open query it claims to answer and records it.
func (c *Client) takeLookupAnswer(cs *chanState, friend channel.IdentityKey, body []byte) error {
	st := c.lookups()
	reject := func(p *pendingLookup, err error) error {
		st.mu.Lock()
		st.stats.rejected++
		if p != nil && len(p.rejected) < maxLookupAnswers {
			p.rejected = append(p.rejected, fmt.Sprintf("%s via %s: %v", friend, cs.name, err))
		}
		st.mu.Unlock()
		return err
	}
	a, err := decodeLookupAnswer(body)
	if err != nil {
		return reject(nil, err)
	}
	st.mu.Lock()
	p := st.pending[a.ID]
	st.mu.Unlock()
	if p == nil {
		return reject(nil, fmt.Errorf("%w: query %x", ErrUnknownQuery, a.ID))
	}
	if _, asked := p.channels[cs.key.ID()]; !asked {
		return reject(p, fmt.Errorf("%w: query %x was not posted in %q", ErrUnknownQuery, a.ID, cs.name))
	}
	id, err := openLookupAnswer(a, p.priv, p.hash)
	if err != nil {
		return reject(p, err)
	}
	who := cs.key.ID().String() + "|" + friend.String()
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.from[who] {
		st.stats.rejected++
		return fmt.Errorf("%w: %s via %s", ErrReplayedAnswer, friend, cs.name)
	}
	if len(p.answers) >= maxLookupAnswers {
		return fmt.Errorf("%w: more than %d answers", ErrBadLookup, maxLookupAnswers)
	}
	p.from[who] = true
	p.answers = append(p.answers, ContactAnswer{Identity: id.String(), Friend: friend.String(), Via: cs.name})
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return nil
}
