package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/peerlimit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/wire"
)

// Defaults for Config fields left zero.
const (
	DefaultCapacity          = 1000
	DefaultMaxChannels       = 256
	DefaultTTL               = 24 * time.Hour
	DefaultReplayWindow      = 2 * time.Minute
	DefaultRequestsPerMinute = 30
	DefaultRequestBurst      = 5
)

// streamTimeout bounds one registration or notice exchange.
const streamTimeout = 10 * time.Second

// Config says how a Registry serves registrations. Zero fields take the
// defaults above.
type Config struct {
	Owner         channel.IdentityKey // zero: not known yet (only hop infinity, if allowed; stored chains are held until SetOwner)
	Capacity      int                 // registrations served at once; default 1000
	AllowInfinity bool                // accept clients without a chain
	MaxChannels   int                 // per registrant; default 256, at most MaxChannelsPerRequest
	TTL           time.Duration       // registration lifetime, re-register before; default 24h
	// ReplayWindow: a request's timestamp may differ from the node's clock
	// by at most this much; default 2 minutes.
	ReplayWindow time.Duration
	// RequestsPerMinute and RequestBurst rate-limit requests per remote
	// peer; defaults 30 and 5.
	RequestsPerMinute int
	RequestBurst      int
	Now               func() time.Time // default time.Now
	Logger            *slog.Logger     // default slog.Default()
}

func (c *Config) setDefaults() {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	c.MaxChannels = min(c.MaxChannels, MaxChannelsPerRequest)
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.ReplayWindow <= 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	if c.RequestsPerMinute <= 0 {
		c.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = DefaultRequestBurst
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Records is where a Registry keeps registrations, revocations and
// undelivered notices. node/store's db.Meta("registrations") fits. Each
// write must be durable when it returns.
type Records interface {
	Get(k []byte) ([]byte, error)
	Put(k, v []byte) error
	Delete(k []byte) error
	ForEach(func(k, v []byte) error) error
}

// Registration is one light client the node serves.
type Registration struct {
	Identity    channel.IdentityKey
	Peer        peer.ID // the device that registered
	Hop         int     // HopInfinity for a stranger
	Channels    []channel.ID
	Since       time.Time // first registered (kept across re-registrations)
	Expires     time.Time
	SponsoredBy channel.IdentityKey // the last ticket's issuer; zero for the owner and strangers
	// Path is the trust chain that admitted the user: the owner, then
	// each sponsor down to SponsoredBy (empty for the owner and strangers).
	Path []channel.IdentityKey
}

// Load is how busy a node is.
type Load struct{ Registered, Capacity int }

// entry is a Registration with what the registry needs to revoke and
// re-check it.
type entry struct {
	Registration
	path []channel.IdentityKey // sponsors, owner first
	root channel.IdentityKey   // the owner the chain led to; zero for strangers
	last time.Time             // timestamp of the last accepted request
	// others are the identity's other devices (paper §4.7) that registered
	// before Peer, most recent last; they share the registration.
	others []peer.ID
}

// MaxDevices bounds the devices one registration serves at once.
const MaxDevices = 8

// devicesAfter returns the devices a registration keeps when p registers
// for the identity that old had: old's devices and old's own peer, minus
// p, the most recent MaxDevices-1.
func devicesAfter(old *entry, p peer.ID) []peer.ID {
	if old == nil {
		return nil
	}
	var out []peer.ID
	for _, d := range append(slices.Clone(old.others), old.Peer) {
		if d != p && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) > MaxDevices-1 {
		out = out[len(out)-(MaxDevices-1):]
	}
	return out
}

type pendingNotice struct {
	Status Status
	Detail string
	At     time.Time
}

// Registry serves /redpanda/register/1.0.0 on a host.
type Registry struct {
	h    host.Host
	recs Records
	cfg  Config
	log  *slog.Logger

	mu    sync.Mutex
	owner channel.IdentityKey
	regs  map[channel.IdentityKey]*entry // change only through setEntryLocked, deleteEntryLocked
	// devices counts the registrations of each device, so that
	// Registered, which the sync layer asks for every message, neither
	// scans regs nor waits on mu, which a registration holds across its
	// durable write. Written under mu and devMu, read under devMu.
	devMu    sync.RWMutex
	devices  map[peer.ID]int
	revoked  map[channel.IdentityKey]bool
	pending  map[channel.IdentityKey]pendingNotice
	seen     *replayCache // admitted requests' signature hashes (admission.go)
	limits   requestLimits
	onChange []func()
	closed   bool
	// writing holds the identities whose registration is being written,
	// outside mu, so that concurrent registrations share the store's
	// group commit; a second request for the same identity waits on the
	// channel. writingNew counts those that take a new place, against
	// the capacity.
	writing    map[channel.IdentityKey]chan struct{}
	writingNew int
	// held are the registrations a ticket chain or pairing admitted,
	// loaded while the owner was not yet known (Config.Owner zero): kept
	// in the records but not served until SetOwner says whether their
	// chain still leads to the owner. Only load fills it.
	held map[channel.IdentityKey]*entry

	decided decisions

	stop chan struct{}
	wg   sync.WaitGroup
}

// Record keys: a prefix and the 32-byte identity.
var (
	keyReg     = []byte("reg/")
	keyRevoked = []byte("rev/")
	keyNotice  = []byte("note/")
)

func recKey(prefix []byte, id channel.IdentityKey) []byte {
	return append(append([]byte(nil), prefix...), id[:]...)
}

// NewRegistry loads the registry from recs (dropping what expired or no
// longer leads to cfg.Owner) and serves ProtocolID on h until Close.
//
// A zero cfg.Owner means the owner is not known yet, not that the node has
// none: a factory reset (Reset) deletes the records, so records with a
// chain can only be there because the caller has not said who owns the
// node. Those are held, neither served nor dropped, until SetOwner.
func NewRegistry(h host.Host, recs Records, cfg Config) (*Registry, error) {
	cfg.setDefaults()
	r := &Registry{h: h, recs: recs, cfg: cfg, log: cfg.Logger.With("component", "routing"),
		owner: cfg.Owner, regs: map[channel.IdentityKey]*entry{}, devices: map[peer.ID]int{}, revoked: map[channel.IdentityKey]bool{},
		held: map[channel.IdentityKey]*entry{}, pending: map[channel.IdentityKey]pendingNotice{}, seen: newReplayCache(),
		limits: newRequestLimits(cfg), writing: map[channel.IdentityKey]chan struct{}{}, stop: make(chan struct{})}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("routing.NewRegistry: %w", err)
	}
	r.mu.Lock()
	if r.owner == (channel.IdentityKey{}) {
		r.holdChainedLocked()
	}
	r.dropForeignLocked()
	r.expireLocked(cfg.Now())
	for _, e := range r.regs {
		for _, p := range append(slices.Clone(e.others), e.Peer) {
			h.ConnManager().Protect(p, p2p.TagRegistered)
		}
	}
	r.mu.Unlock()
	h.SetStreamHandler(ProtocolID, r.handle)
	r.wg.Add(1)
	go r.sweeper()
	return r, nil
}

type storedReg struct {
	V        int      `json:"v"`
	Peer     string   `json:"peer"`
	Hop      int      `json:"hop"`
	Channels [][]byte `json:"channels"`
	Since    int64    `json:"since"`
	Expires  int64    `json:"expires"`
	Path     [][]byte `json:"path"`
	Root     []byte   `json:"root"`
	Last     int64    `json:"last"`
	Others   []string `json:"others,omitempty"`
}

type storedNotice struct {
	Status int32  `json:"status"`
	Detail string `json:"detail"`
	At     int64  `json:"at"`
}

func (r *Registry) load() error {
	var bad [][]byte
	err := r.recs.ForEach(func(k, v []byte) error {
		var id channel.IdentityKey
		switch {
		case len(k) == len(keyReg)+len(id) && bytes.HasPrefix(k, keyReg):
			copy(id[:], k[len(keyReg):])
			e, err := decodeStoredReg(id, v)
			if err != nil {
				r.log.Warn("dropping unreadable registration record", "identity", id, "err", err)
				bad = append(bad, k)
				return nil
			}
			r.setEntryLocked(e)
		case len(k) == len(keyRevoked)+len(id) && bytes.HasPrefix(k, keyRevoked):
			copy(id[:], k[len(keyRevoked):])
			r.revoked[id] = true
		case len(k) == len(keyNotice)+len(id) && bytes.HasPrefix(k, keyNotice):
			copy(id[:], k[len(keyNotice):])
			var n storedNotice
			if err := json.Unmarshal(v, &n); err != nil {
				bad = append(bad, k)
				return nil
			}
			r.pending[id] = pendingNotice{Status: Status(n.Status), Detail: n.Detail, At: time.UnixMilli(n.At)}
		default:
			r.log.Warn("ignoring unknown record", "key", fmt.Sprintf("%x", k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading registrations: %w", err)
	}
	for _, k := range bad {
		if err := r.recs.Delete(k); err != nil {
			return fmt.Errorf("dropping a bad record: %w", err)
		}
	}
	return nil
}

func decodeStoredReg(id channel.IdentityKey, v []byte) (*entry, error) {
	var s storedReg
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	if s.V != 1 {
		return nil, fmt.Errorf("record version %d", s.V)
	}
	p, err := peer.Decode(s.Peer)
	if err != nil {
		return nil, err
	}
	e := &entry{Registration: Registration{Identity: id, Peer: p, Hop: s.Hop,
		Since: time.UnixMilli(s.Since), Expires: time.UnixMilli(s.Expires)}, last: time.UnixMilli(s.Last)}
	for _, c := range s.Channels {
		var ch channel.ID
		if len(c) != len(ch) {
			return nil, fmt.Errorf("channel of %d bytes", len(c))
		}
		copy(ch[:], c)
		e.Channels = append(e.Channels, ch)
	}
	for _, k := range s.Path {
		var key channel.IdentityKey
		if len(k) != len(key) {
			return nil, fmt.Errorf("sponsor of %d bytes", len(k))
		}
		copy(key[:], k)
		e.path = append(e.path, key)
	}
	if len(s.Root) == len(e.root) {
		copy(e.root[:], s.Root)
	}
	if n := len(e.path); n > 0 {
		e.SponsoredBy = e.path[n-1]
	}
	for _, o := range s.Others {
		op, err := peer.Decode(o)
		if err != nil {
			return nil, err
		}
		e.others = append(e.others, op)
	}
	return e, nil
}

func (r *Registry) putReg(e *entry) error {
	v, err := encodeStoredReg(e)
	if err != nil {
		return err
	}
	return r.recs.Put(recKey(keyReg, e.Identity), v)
}

// encodeStoredReg is the record of e that decodeStoredReg reads.
func encodeStoredReg(e *entry) ([]byte, error) {
	s := storedReg{V: 1, Peer: e.Peer.String(), Hop: e.Hop, Since: e.Since.UnixMilli(),
		Expires: e.Expires.UnixMilli(), Last: e.last.UnixMilli()}
	for _, c := range e.Channels {
		s.Channels = append(s.Channels, bytes.Clone(c[:]))
	}
	for _, k := range e.path {
		s.Path = append(s.Path, bytes.Clone(k[:]))
	}
	for _, o := range e.others {
		s.Others = append(s.Others, o.String())
	}
	if e.root != (channel.IdentityKey{}) {
		s.Root = bytes.Clone(e.root[:])
	}
	return json.Marshal(s)
}

// outNotice is a notice on its way to the client identity id at peer.
type outNotice struct {
	id   channel.IdentityKey
	peer peer.ID
	n    Notice
}

// removeLocked ends a registration; with a status it also leaves a notice
// for the client. It returns the notice to send, if any.
func (r *Registry) removeLocked(e *entry, st Status, detail string, now time.Time) (*outNotice, error) {
	if err := r.recs.Delete(recKey(keyReg, e.Identity)); err != nil {
		return nil, fmt.Errorf("deleting registration of %s: %w", e.Identity, err)
	}
	r.deleteEntryLocked(e)
	r.unprotectDevicesLocked(e)
	if st == 0 {
		return nil, nil
	}
	pn := pendingNotice{Status: st, Detail: detail, At: now}
	v, _ := json.Marshal(storedNotice{Status: int32(st), Detail: detail, At: now.UnixMilli()})
	if err := r.recs.Put(recKey(keyNotice, e.Identity), v); err != nil {
		// The registration is gone either way; the client learns at its
		// next Register that it is no longer served.
		r.log.Warn("could not keep a notice", "identity", e.Identity, "err", err)
	}
	r.pending[e.Identity] = pn
	return &outNotice{id: e.Identity, peer: e.Peer, n: Notice{Node: r.h.ID(), Status: st, Detail: detail, At: now}}, nil
}

// unprotectLocked releases the connection protection of p unless another
// registration still uses that device.
func (r *Registry) unprotectLocked(p peer.ID) {
	r.devMu.RLock()
	inUse := r.devices[p] > 0
	r.devMu.RUnlock()
	if !inUse {
		r.h.ConnManager().Unprotect(p, p2p.TagRegistered)
	}
}

// unprotectDevicesLocked lets the connection manager trim e's devices
// again, unless another registration still uses them.
func (r *Registry) unprotectDevicesLocked(e *entry) {
	r.unprotectLocked(e.Peer)
	for _, o := range e.others {
		r.unprotectLocked(o)
	}
}

// setEntryLocked adds or replaces the registration of e.Identity.
func (r *Registry) setEntryLocked(e *entry) {
	r.devMu.Lock()
	defer r.devMu.Unlock()
	if old := r.regs[e.Identity]; old != nil {
		r.dropDeviceLocked(old.Peer)
		for _, o := range old.others {
			r.dropDeviceLocked(o)
		}
	}
	r.regs[e.Identity] = e
	r.devices[e.Peer]++
	for _, o := range e.others {
		r.devices[o]++
	}
}

// deleteEntryLocked removes e if it is the registration of e.Identity.
func (r *Registry) deleteEntryLocked(e *entry) {
	r.devMu.Lock()
	defer r.devMu.Unlock()
	if r.regs[e.Identity] != e {
		return
	}
	delete(r.regs, e.Identity)
	r.dropDeviceLocked(e.Peer)
	for _, o := range e.others {
		r.dropDeviceLocked(o)
	}
}

// dropDeviceLocked must be called with devMu held.
func (r *Registry) dropDeviceLocked(p peer.ID) {
	if r.devices[p]--; r.devices[p] <= 0 {
		delete(r.devices, p)
	}
}

// expireLocked drops registrations past their expiry and reports whether
// any went.
func (r *Registry) expireLocked(now time.Time) bool {
	changed := false
	for _, e := range r.regs {
		if now.Before(e.Expires) {
			continue
		}
		if _, err := r.removeLocked(e, 0, "", now); err != nil {
			r.log.Warn("could not drop an expired registration", "identity", e.Identity, "err", err)
			continue
		}
		r.log.Info("registration dropped: expired", "identity", e.Identity, "hop", hopString(e.Hop), "expires", e.Expires.UTC().Format(time.RFC3339))
		changed = true
	}
	r.seen.expire(now)
	return changed
}

// holdChainedLocked sets aside the loaded registrations that a chain or
// pairing admitted, while the owner is not known: see held.
func (r *Registry) holdChainedLocked() {
	for _, e := range r.regs {
		if e.Hop == HopInfinity {
			continue
		}
		r.deleteEntryLocked(e)
		r.held[e.Identity] = e
	}
	if len(r.held) > 0 {
		r.log.Info("registrations kept until the node's owner is known", "held", len(r.held))
	}
}

// restoreHeldLocked serves the held registrations again once the owner is
// known; dropForeignLocked then drops those that lead elsewhere.
func (r *Registry) restoreHeldLocked() {
	for id, e := range r.held {
		delete(r.held, id)
		if r.regs[id] != nil {
			continue // registered again meanwhile: that record replaced this one
		}
		r.setEntryLocked(e)
		for _, p := range append(slices.Clone(e.others), e.Peer) {
			r.h.ConnManager().Protect(p, p2p.TagRegistered)
		}
	}
}

// dropReasonLocked says why e may no longer be served, with log
// attributes naming who caused it, or "" if it may.
func (r *Registry) dropReasonLocked(e *entry) (string, []any) {
	if r.revoked[e.Identity] {
		return "registration dropped: identity revoked by the node's owner", nil
	}
	for _, k := range e.path {
		if r.revoked[k] {
			return "registration dropped: a sponsor in its ticket chain was revoked", []any{"sponsor", k}
		}
	}
	if e.Hop != HopInfinity && e.root != r.owner {
		return "registration dropped: the node's owner changed (re-paired)", []any{"chain_owner", e.root, "owner", r.owner}
	}
	return "", nil
}

// dropForeignLocked drops registrations whose chain led to another owner
// than the current one (the node was re-paired), or through a revoked
// identity, logging which.
func (r *Registry) dropForeignLocked() bool {
	changed := false
	for _, e := range r.regs {
		reason, attrs := r.dropReasonLocked(e)
		if reason == "" {
			continue
		}
		if _, err := r.removeLocked(e, 0, "", r.cfg.Now()); err != nil {
			r.log.Warn("could not drop a registration", "identity", e.Identity, "err", err)
			continue
		}
		r.log.Info(reason, append([]any{"identity", e.Identity, "hop", hopString(e.Hop)}, attrs...)...)
		changed = true
	}
	return changed
}

func (r *Registry) throughRevokedLocked(e *entry) bool {
	if r.revoked[e.Identity] {
		return true
	}
	for _, k := range e.path {
		if r.revoked[k] {
			return true
		}
	}
	return false
}

func (r *Registry) sweeper() {
	defer r.wg.Done()
	every := min(r.cfg.TTL/4, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			changed := r.expireLocked(r.cfg.Now())
			r.mu.Unlock()
			if changed {
				r.changed()
			}
		}
	}
}

// OnChange calls fn (in the goroutine that made the change, with no lock
// held) whenever registrations or channels change.
func (r *Registry) OnChange(fn func()) {
	r.mu.Lock()
	r.onChange = append(r.onChange, fn)
	r.mu.Unlock()
}

func (r *Registry) changed() {
	r.mu.Lock()
	fns := slices.Clone(r.onChange)
	r.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// SetOwner makes id the node's owner (hop 0). Registrations whose chain
// led to a previous owner are dropped; those held since load because the
// owner was not known are served again if their chain leads to id.
func (r *Registry) SetOwner(id channel.IdentityKey) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.owner == id {
		r.mu.Unlock()
		return nil
	}
	r.owner = id
	restored := len(r.held) > 0
	r.restoreHeldLocked()
	if r.revoked[id] {
		delete(r.revoked, id)
		if err := r.recs.Delete(recKey(keyRevoked, id)); err != nil {
			r.mu.Unlock()
			return fmt.Errorf("routing.SetOwner: %w", err)
		}
	}
	changed := r.dropForeignLocked()
	changed = r.expireLocked(r.cfg.Now()) || changed || restored
	r.mu.Unlock()
	r.log.Info("owner set", "owner", id)
	if changed {
		r.changed()
	}
	return nil
}

// Users returns the registrations served now, lowest hop first.
func (r *Registry) Users() []Registration {
	r.mu.Lock()
	changed := r.expireLocked(r.cfg.Now())
	out := make([]Registration, 0, len(r.regs))
	for _, e := range r.regs {
		reg := e.Registration
		reg.Channels = slices.Clone(reg.Channels)
		reg.Path = slices.Clone(e.path)
		out = append(out, reg)
	}
	r.mu.Unlock()
	if changed {
		r.changed()
	}
	slices.SortFunc(out, func(a, b Registration) int {
		if c := rank(a.Hop) - rank(b.Hop); c != 0 {
			return c
		}
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return bytes.Compare(a.Identity[:], b.Identity[:])
	})
	return out
}

// Channels returns the union of every registration's channels, sorted:
// what the node must serve.
func (r *Registry) Channels() []channel.ID {
	set := map[channel.ID]bool{}
	for _, u := range r.Users() {
		for _, c := range u.Channels {
			set[c] = true
		}
	}
	out := make([]channel.ID, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b channel.ID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Load reports registrations served and capacity.
func (r *Registry) Load() Load {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Load{Registered: len(r.regs), Capacity: r.cfg.Capacity}
}

// Revoke removes id and every registration whose chain passes through id,
// tells them why, and refuses future chains through id. It returns the
// identities removed, lowest hop first.
func (r *Registry) Revoke(id channel.IdentityKey) ([]channel.IdentityKey, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if id == r.owner && id != (channel.IdentityKey{}) {
		r.mu.Unlock()
		return nil, ErrRevokeOwner
	}
	if err := r.recs.Put(recKey(keyRevoked, id), []byte{1}); err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("routing.Revoke: %w", err)
	}
	r.revoked[id] = true
	now := r.cfg.Now()
	var gone []*entry
	for _, e := range r.regs {
		if r.throughRevokedLocked(e) {
			gone = append(gone, e)
		}
	}
	slices.SortFunc(gone, func(a, b *entry) int { return rank(a.Hop) - rank(b.Hop) })
	var removed []channel.IdentityKey
	var notices []outNotice
	var err error
	for _, e := range gone {
		detail := fmt.Sprintf("the node's owner revoked %s", id)
		if e.Identity != id {
			detail = fmt.Sprintf("your sponsor %s was revoked by the node's owner", id)
		}
		n, rerr := r.removeLocked(e, StatusRevoked, detail, now)
		if rerr != nil {
			err = errors.Join(err, rerr)
			continue
		}
		reason, attrs := r.dropReasonLocked(e)
		r.log.Info(reason, append([]any{"identity", e.Identity, "hop", hopString(e.Hop)}, attrs...)...)
		removed = append(removed, e.Identity)
		notices = append(notices, *n)
	}
	for _, e := range r.held {
		if !r.throughRevokedLocked(e) {
			continue
		}
		if derr := r.recs.Delete(recKey(keyReg, e.Identity)); derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		delete(r.held, e.Identity)
		reason, attrs := r.dropReasonLocked(e)
		r.log.Info(reason, append([]any{"identity", e.Identity, "hop", hopString(e.Hop), "held", true}, attrs...)...)
		removed = append(removed, e.Identity)
	}
	r.mu.Unlock()
	r.log.Info("identity revoked", "identity", id, "removed", len(removed))
	r.sendNotices(notices)
	if len(removed) > 0 {
		r.changed()
	}
	if err != nil {
		return removed, fmt.Errorf("routing.Revoke: %w", err)
	}
	return removed, nil
}

// Close stops serving and waits for notices in flight.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.h.RemoveStreamHandler(ProtocolID)
	close(r.stop)
	r.wg.Wait()
	return nil
}

// rank orders hops with strangers last.
func rank(hop int) int {
	if hop == HopInfinity {
		return MaxHop + 1
	}
	return hop
}

func (r *Registry) handle(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	remote := s.Conn().RemotePeer()
	resp, notices, changed := r.serve(s, remote, peerlimit.ConnKey(s.Conn()))
	r.decided.add(resp.Status)
	// The change hooks run before the answer, so that a client told "OK"
	// finds its channels already served.
	if changed {
		r.changed()
	}
	b, err := resp.encode()
	if err == nil {
		err = wire.WriteFrame(s, b)
	}
	if err != nil {
		r.log.Debug("could not answer a registration", "peer", remote, "err", err)
	}
	r.sendNotices(notices)
}

// serve reads one request and decides it.
func (r *Registry) serve(s io.Reader, remote peer.ID, addr string) (response, []outNotice, bool) {
	refuse := func(st Status, format string, a ...any) (response, []outNotice, bool) {
		r.log.Info("registration refused", "peer", remote, "status", st.String(), "detail", fmt.Sprintf(format, a...))
		return response{Status: st, Detail: fmt.Sprintf(format, a...), Load: r.Load()}, nil, false
	}
	// Read before answering even a rate-limited peer, so the answer is not
	// lost to a reset of the unread request.
	b, err := wire.ReadFrame(s, MaxRequestSize)
	if ok, what := r.limits.allow(remote, addr, r.Registered(remote)); !ok {
		return refuse(StatusRateLimited, "too many requests from %s; wait a minute", what)
	}
	if err != nil {
		return refuse(StatusMalformed, "reading request: %v", err)
	}
	req, err := decodeRequest(b)
	if err != nil {
		return refuse(StatusMalformed, "%v", err)
	}
	if req.Peer != remote {
		return refuse(StatusBadSignature, "request is bound to peer %s but came from %s", req.Peer, remote)
	}
	if !req.verifySignature() {
		return refuse(StatusBadSignature, "request signature does not verify for %s", req.Identity)
	}
	return r.admit(req)
}

// admit decides a request whose signature verified: it decides under the
// registry lock, writes the registration outside it (so that concurrent
// registrations share one group commit instead of one fsync each), then
// installs it under the lock, unless the write failed or a revocation or
// re-pairing meanwhile made it void.
func (r *Registry) admit(req *request) (response, []outNotice, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// One write per identity at a time: the second request is decided
	// against the first one's outcome.
	for w := r.writing[req.Identity]; w != nil; w = r.writing[req.Identity] {
		r.mu.Unlock()
		<-w
		r.mu.Lock()
	}
	d := r.decideLocked(req)
	if d.e == nil {
		return d.resp, d.notices, d.changed
	}
	e := d.e
	done := make(chan struct{})
	r.writing[e.Identity] = done
	if d.old == nil {
		r.writingNew++
	}
	r.mu.Unlock()
	err := r.putReg(e)
	r.mu.Lock()
	delete(r.writing, e.Identity)
	if d.old == nil {
		r.writingNew--
	}
	close(done)
	refuse := func(st Status, format string, a ...any) (response, []outNotice, bool) {
		detail := fmt.Sprintf(format, a...)
		r.log.Info("registration refused", "identity", req.Identity, "status", st.String(), "detail", detail)
		return response{Status: st, Detail: detail, Load: r.loadLocked()}, d.notices, d.changed
	}
	if err != nil {
		return refuse(StatusInternal, "could not store the registration: %v", err)
	}
	// Decided on a state that may have moved while writing.
	var void Status
	switch {
	case r.throughRevokedLocked(e):
		void = StatusRevoked
	case e.Hop != HopInfinity && e.root != r.owner:
		void = StatusBadChain // re-paired: the chain leads to the old owner
	}
	if void != 0 {
		if err := r.recs.Delete(recKey(keyReg, e.Identity)); err != nil {
			r.log.Warn("could not drop a voided registration", "identity", e.Identity, "err", err)
		}
		return refuse(void, "revoked or re-paired while registering")
	}
	cur := r.regs[e.Identity]
	r.setEntryLocked(e)
	r.clearPendingLocked(e.Identity)
	if cur != nil && cur.Peer != e.Peer {
		r.unprotectLocked(cur.Peer)
	}
	r.h.ConnManager().Protect(e.Peer, p2p.TagRegistered)
	changed := d.changed || cur == nil || !slices.Equal(cur.Channels, e.Channels)
	r.log.Info("registered", "identity", e.Identity, "peer", e.Peer, "hop", e.Hop, "channels", len(e.Channels))
	return response{Status: StatusOK, Hop: e.Hop, Expires: e.Expires, Load: r.loadLocked()}, d.notices, changed
}

func (r *Registry) loadLocked() Load { return Load{Registered: len(r.regs), Capacity: r.cfg.Capacity} }

// decision is what admit decided under the lock: an entry to write, or
// the answer (e nil).
type decision struct {
	e       *entry
	old     *entry
	resp    response
	notices []outNotice
	changed bool
}

// decideLocked checks a request against the registry and makes room for
// it (evicting when full). Registrations being written count against the
// capacity.
func (r *Registry) decideLocked(req *request) decision {
	now := r.cfg.Now()
	changed := r.expireLocked(now)
	refuse := func(st Status, format string, a ...any) decision {
		d := fmt.Sprintf(format, a...)
		r.log.Info("registration refused", "identity", req.Identity, "status", st.String(), "detail", d)
		return decision{resp: response{Status: st, Detail: d, Load: r.loadLocked()}, changed: changed}
	}
	if r.closed {
		return refuse(StatusInternal, "node shutting down")
	}
	if d := req.Timestamp.Sub(now); d > r.cfg.ReplayWindow || d < -r.cfg.ReplayWindow {
		return refuse(StatusReplay, "request timestamp %s is %s away from the node's clock (window %s)",
			req.Timestamp.UTC().Format(time.RFC3339), d.Round(time.Second), r.cfg.ReplayWindow)
	}
	sig := sigHash(req.Signature)
	if r.seen.has(sig) {
		return refuse(StatusReplay, "request seen before")
	}
	old := r.regs[req.Identity]
	joining := false
	if old != nil && req.Timestamp.Before(old.last) {
		if req.Peer == old.Peer {
			return refuse(StatusReplay, "request is older than the registration it would replace")
		}
		// Another device of the identity, whose request was signed
		// before the last accepted one but decided after it (two devices
		// registering at once, as after the node restarts): not a replay,
		// which seen has caught, so the device joins the registration,
		// while the newer request's channels, hop and chain stay.
		joining = true
	}

	hop, err := req.Chain.verify(r.owner, req.Identity, now, func(k channel.IdentityKey) bool { return r.revoked[k] })
	switch {
	case errors.Is(err, ErrRevoked):
		return refuse(StatusRevoked, "%v", err)
	case errors.Is(err, ErrHopTooFar):
		return refuse(StatusHopTooFar, "%v", err)
	case err != nil:
		return refuse(StatusBadChain, "%v", err)
	case hop == HopInfinity && !r.cfg.AllowInfinity:
		if r.owner == (channel.IdentityKey{}) {
			return refuse(StatusNotAllowed, "this node has no owner yet and serves no strangers")
		}
		return refuse(StatusNotAllowed, "no hop ticket chain, and this node serves only its owner's friends")
	}
	if len(req.Channels) > r.cfg.MaxChannels {
		return refuse(StatusQuotaExceeded, "%d channels, at most %d per registrant", len(req.Channels), r.cfg.MaxChannels)
	}

	var notices []outNotice
	if old == nil && len(r.regs)+r.writingNew >= r.cfg.Capacity {
		var worst *entry
		for _, e := range r.regs {
			if worst == nil || rank(e.Hop) > rank(worst.Hop) ||
				(rank(e.Hop) == rank(worst.Hop) && e.Since.After(worst.Since)) {
				worst = e
			}
		}
		if worst == nil || rank(worst.Hop) <= rank(hop) {
			if pn, ok := r.pending[req.Identity]; ok {
				r.clearPendingLocked(req.Identity)
				return refuse(pn.Status, "%s (at %s); the node is still full", pn.Detail, pn.At.UTC().Format(time.RFC3339))
			}
			return refuse(StatusFull, "node serves %d registrations, all at hop %s or nearer", r.cfg.Capacity, hopString(hop))
		}
		n, err := r.removeLocked(worst, StatusEvicted, fmt.Sprintf("evicted by a registration at hop %s; you were at hop %s and the node holds %d",
			hopString(hop), hopString(worst.Hop), r.cfg.Capacity), now)
		if err != nil {
			return refuse(StatusInternal, "could not make room: %v", err)
		}
		r.log.Info("registration dropped: evicted to make room for a nearer hop", "identity", worst.Identity, "hop", hopString(worst.Hop), "by", req.Identity, "by_hop", hopString(hop))
		notices = append(notices, *n)
		changed = true
	}

	// Admissible: only now is the request worth remembering.
	r.seen.remember(sig, req.Timestamp.Add(r.cfg.ReplayWindow))
	if joining {
		e := *old
		e.others = append(slices.DeleteFunc(slices.Clone(old.others), func(d peer.ID) bool { return d == req.Peer }), req.Peer)
		if len(e.others) > MaxDevices-1 {
			e.others = e.others[len(e.others)-(MaxDevices-1):]
		}
		return decision{e: &e, old: old, notices: notices, changed: changed}
	}
	ms := time.UnixMilli(now.UnixMilli()) // what the records keep
	e := &entry{Registration: Registration{Identity: req.Identity, Peer: req.Peer, Hop: hop,
		Channels: slices.Clone(req.Channels), Since: ms, Expires: ms.Add(r.cfg.TTL)}, last: req.Timestamp}
	if old != nil {
		e.Since = old.Since
		e.others = devicesAfter(old, e.Peer)
	}
	if hop > 0 {
		e.path = req.Chain.sponsors()
		e.SponsoredBy = e.path[len(e.path)-1]
		e.root = r.owner
		if end := req.Chain.notAfter(); end.Before(e.Expires) {
			e.Expires = end
		}
	} else if hop == 0 {
		e.root = r.owner
	}
	return decision{e: e, old: old, notices: notices, changed: changed}
}

func (r *Registry) clearPendingLocked(id channel.IdentityKey) {
	if _, ok := r.pending[id]; !ok {
		return
	}
	delete(r.pending, id)
	if err := r.recs.Delete(recKey(keyNotice, id)); err != nil {
		r.log.Warn("could not clear a notice", "identity", id, "err", err)
	}
}

func hopString(h int) string {
	if h == HopInfinity {
		return "infinity"
	}
	return fmt.Sprint(h)
}

// sendNotices tells connected clients at once why their registration
// ended; a notice that cannot be delivered stays pending for the client's
// next Register.
func (r *Registry) sendNotices(ns []outNotice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, o := range ns {
		if r.h.Network().Connectedness(o.peer) != network.Connected {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.deliver(o.peer, o.n); err != nil {
				r.log.Debug("notice not delivered; kept for the next Register", "peer", o.peer, "err", err)
				return
			}
			r.log.Info("notice delivered", "identity", o.id, "status", o.n.Status.String())
			r.mu.Lock()
			defer r.mu.Unlock()
			// Only this notice: a newer one waits for its own delivery.
			if pn, ok := r.pending[o.id]; ok && pn.At.Equal(o.n.At) && pn.Status == o.n.Status {
				r.clearPendingLocked(o.id)
			}
		}()
	}
}

func (r *Registry) deliver(to peer.ID, n Notice) error {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := r.h.NewStream(network.WithAllowLimitedConn(network.WithNoDial(ctx, "registration notice"), "redpanda"), to, NoticeProtocolID)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	b, err := encodeNotice(n)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(s, b); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	// The client closes after reading: EOF is the receipt.
	var one [1]byte
	if _, err := s.Read(one[:]); !errors.Is(err, io.EOF) {
		return fmt.Errorf("no receipt: %v", err)
	}
	return nil
}
