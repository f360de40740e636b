package provisioning

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/internal/peerlimit"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Records is where the state lives: one bucket of the node's store
// (*store.Meta from db.Meta("provisioning") satisfies it). Get returns
// store.ErrNotFound for a missing key; Put is durable and atomic on return.
type Records interface {
	Get(key []byte) ([]byte, error)
	Put(key, value []byte) error
}

// Rate limiting (see AttemptDelay; the per-address bounds are in limits.go).
const (
	freeAttempts = 3
	maxDelay     = 60 * time.Second
)

// AttemptDelay is how long the node waits before judging an attempt after
// `failures` consecutive failed attempts from the same source address:
// nothing for the first three, then 1 s, 2 s, 4 s, ... doubling up to
// 60 s. The count is per address (an IPv4 address, an IPv6 /56, or the
// relay the attempt came through), not per peer (peer IDs cost nothing)
// and not global (a stranger's failures must not slow the owner's phone
// down); it returns to zero on a successful pairing from that address, a
// reset or a restart, and is forgotten an hour after the address's last
// attempt. The 128-bit token, not this delay, is what makes guessing
// hopeless; the delay only keeps guessing from costing the node work.
func AttemptDelay(failures int) time.Duration {
	if failures < freeAttempts {
		return 0
	}
	n := failures - freeAttempts
	if n >= 6 { // 1s<<6 = 64 s > cap
		return maxDelay
	}
	return min(time.Second<<n, maxDelay)
}

// Config tunes a Provisioner. Zero fields take the defaults beside them.
type Config struct {
	// Logger receives state changes and every failed attempt (never the
	// token). Default: slog.Default().
	Logger *slog.Logger
	// Addrs lists the addresses the URI may advertise (the appliance adds
	// its mapped external address). Default: the host's Addrs().
	Addrs func() []ma.Multiaddr
	// URIBudget is the longest URI that URI() builds: addresses that would
	// make it longer are left out (the first one is always kept). 122
	// characters keep the QR at version 5 with medium error correction
	// (45 modules with the quiet zone: 23 terminal rows). Default: 122.
	URIBudget int
	// OnReset forgets what the owner brought (registrations, stored
	// messages). It may run twice for one reset after a power cut, so it
	// must be idempotent. Default: nothing to forget.
	OnReset func(context.Context) error
	// RenewIdentity replaces the node's identity key on disk (for
	// Reset(ctx, true)); the appliance then rebuilds the host and calls New
	// again. Required only for renewing resets.
	RenewIdentity func() error
	// StreamTimeout bounds each step of a pairing session. Default: 30 s.
	StreamTimeout time.Duration
	// Sleep waits out the rate-limit delay. Default: a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for PairedAt. Default: time.Now.
	Now func() time.Time
	// Owner, when set, is the owner by configuration: the node is owned
	// by this identity from its first start, makes no token, shows no QR
	// code and refuses pairing; a factory reset forgets the users and
	// messages and leaves the node owned by Owner again. A node already
	// paired with another identity refuses to start with it
	// (ErrOwnerConflict) until it is reset.
	Owner ed25519.PublicKey
}

// crashPoint, when set by a test in a child process, is called at each
// persisted step of pairing so the test can SIGKILL the process there.
var crashPoint func(step string)

func crash(step string) {
	if crashPoint != nil {
		crashPoint(step)
	}
}

// Provisioner runs the node side: it owns the state record, the token in
// memory and the /redpanda/pair/1.0.0 stream handler.
type Provisioner struct {
	rec     Records
	h       host.Host
	nodeKey ed25519.PublicKey
	cfg     Config
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	st      record
	token   Token // valid while st.state == StateWaiting
	restart bool
	subs    []func(State)

	judge    sync.Mutex // one verdict at a time (the record write)
	sessions *sessions  // per-address sessions, slots and failures
	attempts attempts   // outcomes since start, for metrics
}

// New loads (or creates) the state and starts serving the pairing
// protocol on h. A node that was waiting gets a fresh token: only the
// token's derived key is stored, so the previous token died with the
// process. A reset interrupted by a power cut is finished here.
func New(rec Records, h host.Host, cfg Config) (*Provisioner, error) {
	pk := h.Peerstore().PubKey(h.ID())
	if pk == nil || pk.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("provisioning.New: %w", ErrUnsupportedKey)
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("provisioning.New: node key: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Addrs == nil {
		cfg.Addrs = h.Addrs
	}
	if cfg.URIBudget == 0 {
		cfg.URIBudget = 122
	}
	if cfg.StreamTimeout == 0 {
		cfg.StreamTimeout = 30 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner != nil && len(cfg.Owner) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("provisioning.New: configured owner key of %d bytes", len(cfg.Owner))
	}
	p := &Provisioner{rec: rec, h: h, nodeKey: ed25519.PublicKey(raw), cfg: cfg,
		log: cfg.Logger.With("component", "provisioning"), sessions: newSessions()}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	buf, err := rec.Get(recordKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.st.state = StateNew
	case err != nil:
		return nil, fmt.Errorf("provisioning.New: read state: %w", err)
	default:
		if p.st, err = decodeRecord(buf); err != nil {
			return nil, fmt.Errorf("provisioning.New: %w", err)
		}
	}
	switch p.st.state {
	case StateNew, StateWaiting:
		if err := p.unowned(p.st.state); err != nil {
			return nil, fmt.Errorf("provisioning.New: %w", err)
		}
	case StateResetting:
		p.log.Warn("finishing a factory reset interrupted by a restart")
		if err := p.finishReset(p.ctx, p.st); err != nil {
			return nil, fmt.Errorf("provisioning.New: resume reset: %w", err)
		}
	case StateOwned:
		if cfg.Owner != nil && !hmac.Equal(cfg.Owner, p.st.owner) {
			return nil, fmt.Errorf("provisioning.New: %w: the configuration names %x, the node is owned by %x; "+
				"reset the node (homenode reset) to hand it to the configured owner, or remove owner from the configuration",
				ErrOwnerConflict, []byte(cfg.Owner), []byte(p.st.owner))
		}
		p.log.Info("node is owned", "owner", fmt.Sprintf("%x", []byte(p.st.owner)))
	}
	h.SetStreamHandler(protocol.ID(ProtocolID), p.handle)
	return p, nil
}

// unowned leaves a node without an owner: owned by the configured owner
// when there is one, else waiting for pairing with a fresh token.
func (p *Provisioner) unowned(from State) error {
	if p.cfg.Owner == nil {
		return p.newToken(from)
	}
	r := record{state: StateOwned, owner: append(ed25519.PublicKey(nil), p.cfg.Owner...), pairedAt: p.cfg.Now()}
	if err := p.rec.Put(recordKey, r.marshal()); err != nil {
		return fmt.Errorf("persist configured owner: %w", err)
	}
	p.st, p.token = r, Token{}
	p.log.Info("owned by the configured owner; pairing is off", "owner", fmt.Sprintf("%x", []byte(r.owner)), "from", from.String())
	return nil
}

// newToken makes a fresh token and persists its derived key: the state
// becomes (or stays) waiting and any previous token is dead.
func (p *Provisioner) newToken(from State) error {
	var t Token
	if _, err := rand.Read(t[:]); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	r := record{state: StateWaiting, tokenKey: DeriveTokenKey(t)}
	if err := p.rec.Put(recordKey, r.marshal()); err != nil {
		return fmt.Errorf("persist waiting state: %w", err)
	}
	crash("waiting-persisted")
	p.st, p.token = r, t
	if from == StateWaiting {
		p.log.Info("waiting for pairing with a fresh token; the previous token is dead")
	} else {
		p.log.Info("waiting for pairing", "from", from.String())
	}
	return nil
}

// Close stops serving the pairing protocol and abandons queued attempts.
func (p *Provisioner) Close() error {
	p.h.RemoveStreamHandler(protocol.ID(ProtocolID))
	p.cancel()
	return nil
}

// State returns the current state.
func (p *Provisioner) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st.state
}

// RestartRequired reports that a renewing reset replaced the identity key
// and the host must be rebuilt (and New called again) to continue.
func (p *Provisioner) RestartRequired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restart
}

// Owner returns the owner, if the node is owned.
func (p *Provisioner) Owner() (Owner, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.state != StateOwned {
		return Owner{}, false
	}
	return Owner{Key: append(ed25519.PublicKey(nil), p.st.owner...), PairedAt: p.st.pairedAt}, true
}

// StoredOwner reads the owner from the stored state without starting a
// Provisioner, so that what depends on the owner can load before pairing
// is served (the registry must know the owner when it loads, or it cannot
// tell its friends' registrations from a previous owner's). ok is false
// unless the state is owned; a node in the middle of a reset has no owner.
func StoredOwner(rec Records) (o Owner, ok bool, err error) {
	buf, err := rec.Get(recordKey)
	if errors.Is(err, store.ErrNotFound) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, fmt.Errorf("provisioning.StoredOwner: %w", err)
	}
	r, err := decodeRecord(buf)
	if err != nil {
		return Owner{}, false, fmt.Errorf("provisioning.StoredOwner: %w", err)
	}
	if r.state != StateOwned {
		return Owner{}, false, nil
	}
	return Owner{Key: r.owner, PairedAt: r.pairedAt}, true, nil
}

// IsOwner reports whether key is the owner's identity key (for owner-only
// protocols).
func (p *Provisioner) IsOwner(key ed25519.PublicKey) bool {
	o, ok := p.Owner()
	return ok && len(key) == ed25519.PublicKeySize && hmac.Equal(o.Key, key)
}

// OnChange registers fn to be called, after the change is durable, with
// each new state (to show or hide the QR code, blink the LED).
func (p *Provisioner) OnChange(fn func(State)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs = append(p.subs, fn)
}

func (p *Provisioner) notify(s State) {
	p.mu.Lock()
	subs := slices.Clone(p.subs)
	p.mu.Unlock()
	for _, fn := range subs {
		fn(s)
	}
}

// URI returns the pairing URI while the node waits for pairing:
// ErrNotWaiting otherwise, ErrRestartRequired after a renewing reset.
func (p *Provisioner) URI() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.restart {
		return "", ErrRestartRequired
	}
	if p.st.state != StateWaiting {
		return "", fmt.Errorf("provisioning: URI: %w (state %s)", ErrNotWaiting, p.st.state)
	}
	u := URI{NodeKey: p.nodeKey, Token: p.token}
	u.Addrs = p.pickAddrs(len(u.String()))
	if len(u.Addrs) == 0 {
		return "", fmt.Errorf("provisioning: URI: the host has no IP address to advertise")
	}
	return u.String(), nil
}

// pickAddrs chooses the best addresses (rankAddr) that fit URIBudget;
// loopback only when there is nothing else.
func (p *Provisioner) pickAddrs(base int) []Addr {
	var all []Addr
	for _, m := range p.cfg.Addrs() {
		if a, ok := AddrFromMultiaddr(m); ok && rankAddr(a) >= 0 && !slices.Contains(all, a) {
			all = append(all, a)
		}
	}
	slices.SortStableFunc(all, func(a, b Addr) int { return rankAddr(a) - rankAddr(b) })
	var out []Addr
	n := base
	for _, a := range all {
		if a.AddrPort.Addr().IsLoopback() && len(out) > 0 {
			break
		}
		l := len(a.String())
		if len(out) > 0 {
			l++ // the '+'
			if n+l > p.cfg.URIBudget {
				continue
			}
		}
		out = append(out, a)
		n += l
	}
	return out
}

// Reset is the factory reset: the owner is forgotten at once (the first
// write), cfg.OnReset forgets what the owner brought, and the node waits
// for pairing with a new token. With renewIdentity, cfg.RenewIdentity
// replaces the identity key too and the node stays Resetting until the
// host is rebuilt and New runs (RestartRequired reports it). A power cut
// anywhere resumes the reset on the next start.
func (p *Provisioner) Reset(ctx context.Context, renewIdentity bool) error {
	if renewIdentity && p.cfg.RenewIdentity == nil {
		return fmt.Errorf("provisioning.Reset: renewing the identity needs Config.RenewIdentity")
	}
	r := record{state: StateResetting, renew: renewIdentity, oldPeer: p.h.ID()}
	p.mu.Lock()
	if err := p.rec.Put(recordKey, r.marshal()); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("provisioning.Reset: %w", err)
	}
	p.st, p.token = r, Token{}
	p.mu.Unlock()
	p.log.Warn("factory reset: owner forgotten", "renew_identity", renewIdentity)
	p.notify(StateResetting)
	p.sessions.clear()
	if err := p.finishReset(ctx, r); err != nil {
		return fmt.Errorf("provisioning.Reset: %w", err)
	}
	return nil
}

// finishReset runs the steps after the Resetting record is durable; each
// is safe to repeat.
func (p *Provisioner) finishReset(ctx context.Context, r record) error {
	if p.cfg.OnReset != nil {
		if err := p.cfg.OnReset(ctx); err != nil {
			return fmt.Errorf("forget owner's data: %w", err)
		}
	}
	if r.renew && r.oldPeer == p.h.ID() {
		if p.cfg.RenewIdentity == nil {
			return fmt.Errorf("identity renewal pending but Config.RenewIdentity is not set")
		}
		if err := p.cfg.RenewIdentity(); err != nil {
			return fmt.Errorf("renew identity: %w", err)
		}
		p.mu.Lock()
		p.restart = true
		p.mu.Unlock()
		p.log.Warn("node identity renewed; restart the host to wait for pairing under the new peer ID")
		return nil
	}
	p.mu.Lock()
	err := p.unowned(StateResetting)
	st := p.st.state
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.notify(st)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle serves one pairing session. The challenge always comes first,
// whatever the load, so the phone reads every answer where it expects
// one. A session waiting for its proof holds no slot (limits.go); a slot
// is taken by a proof, and an address with all its slots taken gets the
// result Busy. Delays after failures are per address and waited out
// before the verdict lock is taken, so one address's failures never make
// another wait.
func (p *Provisioner) handle(s network.Stream) {
	remote := s.Conn().RemotePeer()
	addr := peerlimit.ConnKey(s.Conn())
	log := p.log.With("peer", remote.String(), "addr", addr)
	defer s.Close()
	outcome := outcomeIncomplete
	defer func() { p.attempts[outcome].Add(1) }()
	_ = s.SetDeadline(time.Now().Add(p.cfg.StreamTimeout))

	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		log.Error("pairing attempt failed", "reason", "random nonce", "err", err)
		_ = s.Reset()
		return
	}
	done := p.sessions.opened(addr, s, time.Now())
	if err := writeFrame(s, marshalChallenge(nonce)); err != nil {
		done()
		log.Debug("pairing session ended", "reason", "send challenge", "err", err)
		_ = s.Reset()
		return
	}
	body, err := readFrame(s)
	done()
	if err != nil {
		// Timed out, reset (also by a newer session from the same
		// address) or gone: no attempt was made.
		log.Debug("pairing session ended without a proof", "err", err)
		_ = s.Reset()
		return
	}
	proof, perr := decodeProof(body)

	failures, ok := p.sessions.take(addr, time.Now())
	if !ok {
		log.Warn("pairing attempt refused", "reason", "too many attempts from this address waiting", "status", StatusBusy)
		outcome = int(StatusBusy)
		_ = writeFrame(s, []byte{msgResult, byte(StatusBusy)})
		return
	}
	paired := false
	defer func() { p.sessions.give(addr, paired) }()
	if d := AttemptDelay(failures); d > 0 {
		if err := p.cfg.Sleep(p.ctx, d); err != nil {
			_ = s.Reset()
			return
		}
	}
	_ = s.SetDeadline(time.Now().Add(p.cfg.StreamTimeout))

	status, reason, changed := StatusMalformed, "malformed proof: "+fmt.Sprint(perr), false
	if perr == nil {
		p.judge.Lock()
		status, reason, changed = p.verify(remote, nonce, proof)
		p.judge.Unlock()
	}
	outcome = int(status)
	paired = status == StatusPaired
	if paired {
		log.Info("paired", "owner", fmt.Sprintf("%x", []byte(proof.Owner)), "new", changed)
	} else {
		log.Warn("pairing attempt failed", "reason", reason, "status", status,
			"consecutive_failures", failures+1, "next_delay", AttemptDelay(failures+1))
	}
	// The hooks run before the reply, so that when the phone hears
	// "paired" the node already treats it as its owner (registers it at
	// hop 0, hides the QR).
	if changed {
		p.notify(StateOwned)
	}
	if err := writeFrame(s, []byte{msgResult, byte(status)}); err != nil {
		log.Warn("pairing reply not delivered", "err", err)
	}
}

// verify judges a proof and, if it is good and the node is waiting, makes
// the proof's identity the owner in one durable write that also kills the
// token.
func (p *Provisioner) verify(remote peer.ID, nonce [NonceSize]byte, pr Proof) (st Status, reason string, changed bool) {
	t, err := transcript(p.h.ID(), remote, nonce, pr.PhoneNonce, pr.Owner)
	if err != nil {
		return StatusMalformed, err.Error(), false
	}
	sigOK := ed25519.Verify(pr.Owner, sigMessage(t), pr.Sig[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.restart:
		return StatusNotWaiting, "identity renewed, restart pending", false
	case p.st.state == StateOwned:
		// The owner asking again (say its first reply was lost to a power
		// cut) proves itself by signature and is told it owns the node.
		if sigOK && hmac.Equal(pr.Owner, p.st.owner) {
			return StatusPaired, "", false
		}
		return StatusNotWaiting, "node already has an owner", false
	case p.st.state != StateWaiting:
		return StatusNotWaiting, "node is " + p.st.state.String(), false
	}
	mac := proofMAC(p.st.tokenKey, t)
	if !hmac.Equal(mac[:], pr.MAC[:]) {
		return StatusRejected, "proof does not match this node's current token and this session (wrong, dead or foreign token, or a replayed or relayed proof)", false
	}
	if !sigOK {
		return StatusRejected, "owner signature does not verify", false
	}
	crash("proof-verified")
	r := record{state: StateOwned, owner: pr.Owner, pairedAt: p.cfg.Now()}
	if err := p.rec.Put(recordKey, r.marshal()); err != nil {
		return StatusFailed, "persist owner: " + err.Error(), false
	}
	crash("owner-persisted")
	p.st, p.token = r, Token{}
	return StatusPaired, "", true
}

// Pair is the phone side: it dials the node named by the pairing URI
// (Noise checks the node's key), proves knowledge of the token for this
// session and registers owner as the node's owner. It returns nil when
// the node confirms that owner owns it.
func Pair(ctx context.Context, h host.Host, uri string, owner ed25519.PrivateKey) error {
	u, err := ParseURI(uri)
	if err != nil {
		return fmt.Errorf("provisioning.Pair: %w", err)
	}
	return PairURI(ctx, h, u, owner)
}

// PairURI is Pair with a parsed URI.
func PairURI(ctx context.Context, h host.Host, u URI, owner ed25519.PrivateKey) error {
	if err := pairURI(ctx, h, u, owner); err != nil {
		return fmt.Errorf("provisioning.Pair: %w", err)
	}
	return nil
}

func pairURI(ctx context.Context, h host.Host, u URI, owner ed25519.PrivateKey) error {
	if len(owner) != ed25519.PrivateKeySize {
		return fmt.Errorf("owner key of %d bytes", len(owner))
	}
	pid, err := u.PeerID()
	if err != nil {
		return err
	}
	ai := peer.AddrInfo{ID: pid}
	for _, a := range u.Addrs {
		ai.Addrs = append(ai.Addrs, a.Multiaddr())
	}
	if err := h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect to %s: %w", pid, err)
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), pid, protocol.ID(ProtocolID))
	if err != nil {
		return fmt.Errorf("open pairing stream: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	body, err := readFrame(s)
	if err != nil {
		return fmt.Errorf("read challenge: %w", ctxErr(ctx, err))
	}
	nodeNonce, err := decodeChallenge(body)
	if err != nil {
		return err
	}
	ownerPub := owner.Public().(ed25519.PublicKey)
	pr := Proof{Owner: ownerPub}
	if _, err := io.ReadFull(rand.Reader, pr.PhoneNonce[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	t, err := transcript(pid, h.ID(), nodeNonce, pr.PhoneNonce, ownerPub)
	if err != nil {
		return err
	}
	pr.MAC = proofMAC(DeriveTokenKey(u.Token), t)
	copy(pr.Sig[:], ed25519.Sign(owner, sigMessage(t)))
	if err := writeFrame(s, pr.marshal()); err != nil {
		return fmt.Errorf("send proof: %w", ctxErr(ctx, err))
	}
	body, err = readFrame(s)
	if err != nil {
		return fmt.Errorf("read result: %w", ctxErr(ctx, err))
	}
	st, err := decodeResult(body)
	if err != nil {
		return err
	}
	return st.err()
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
