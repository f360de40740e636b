package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Description is what the router's mapping table shows for our mappings.
const Description = "redPanda home node"

// Port is one port the node listens on and wants reachable from outside.
type Port struct {
	// Protocol is "TCP" or "UDP".
	Protocol string
	// Internal is the port the node listens on.
	Internal uint16
}

func (p Port) key() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Internal) }

// Lease is one mapping in force on the router.
type Lease struct {
	Protocol     string
	InternalPort uint16
	ExternalPort uint16
	// InternalClient is our address on the LAN, as the router forwards to.
	InternalClient string
	// Duration is the lease asked for; 0 means permanent (the router
	// accepts nothing else).
	Duration time.Duration
	// Renewed is when the router last accepted the mapping.
	Renewed time.Time
}

// Expires is when the router drops the mapping unless renewed; zero when
// permanent.
func (l Lease) Expires() time.Time {
	if l.Duration == 0 {
		return time.Time{}
	}
	return l.Renewed.Add(l.Duration)
}

// Config says what to map and how.
type Config struct {
	// Ports to map. More can be set later with SetPorts (the libp2p adapter
	// does so from the host's listen addresses). Default: none.
	Ports []Port
	// Lease is the lease asked for; it is renewed in place at half its
	// length. Routers that accept only permanent mappings (error 725) get a
	// permanent one. Default: 1 hour.
	Lease time.Duration
	// CheckInterval is how often existing mappings and the external
	// address are checked, so a rebooted router gets its mappings back
	// without waiting for the renewal. Default: 1 minute.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff while no gateway answers.
	// Defaults: 5 seconds and 5 minutes.
	RetryMin, RetryMax time.Duration
	// CallTimeout bounds each SOAP call and each discovery. Default: 5 s.
	CallTimeout time.Duration
	// GatewayURL, if set, is the router's description URL; SSDP discovery
	// is skipped. Default: "" (discover with SSDP).
	GatewayURL string
	// StateFile keeps the external ports chosen so a restart asks for the
	// same ones. Default: "" (not kept). The appliance uses
	// DATA_DIR/portmap.json.
	StateFile string
	// Logger default: slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Lease == 0 {
		c.Lease = time.Hour
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Minute
	}
	if c.RetryMin == 0 {
		c.RetryMin = 5 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Lease < time.Second:
		return c, fmt.Errorf("portmap: lease %v is shorter than UPnP's 1 s unit", c.Lease)
	case c.CheckInterval < 0, c.RetryMin < 0, c.RetryMax < c.RetryMin, c.CallTimeout < 0:
		return c, fmt.Errorf("portmap: negative interval or RetryMax < RetryMin in %+v", c)
	}
	for _, p := range c.Ports {
		if err := p.validate(); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (p Port) validate() error {
	if p.Protocol != "TCP" && p.Protocol != "UDP" {
		return fmt.Errorf("portmap: protocol %q, want TCP or UDP", p.Protocol)
	}
	if p.Internal == 0 {
		return fmt.Errorf("portmap: %s port 0 cannot be mapped", p.Protocol)
	}
	return nil
}

// Mapper owns the node's port mappings on the home router.
type Mapper struct {
	cfg Config
	log *slog.Logger
	loc *url.URL

	mu     sync.Mutex
	wanted map[string]Port
	leases map[string]*Lease
	state  state
	gw     *gateway
	diag   Diagnosis
	closed bool

	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// New returns a Mapper; Start begins mapping.
func New(cfg Config) (*Mapper, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Mapper{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "portmap"),
		wanted: make(map[string]Port),
		leases: make(map[string]*Lease),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		diag:   Diagnosis{Status: StatusStarting, Hint: hints[StatusStarting], Since: time.Now()},
	}
	if cfg.GatewayURL != "" {
		if m.loc, err = url.Parse(cfg.GatewayURL); err != nil {
			return nil, fmt.Errorf("portmap: gateway URL: %w", err)
		}
	}
	m.state, err = loadState(cfg.StateFile)
	if err != nil {
		// Only a preference for the same port: keep going, say so, and
		// overwrite it once a mapping succeeds.
		m.log.Warn("ignoring unreadable port state file", "file", cfg.StateFile, "err", err)
		m.state = newState()
	}
	for _, p := range cfg.Ports {
		m.wanted[p.key()] = p
	}
	return m, nil
}

// Start runs the mapping loop until Close (or ctx ends, which also removes
// the mappings).
func (m *Mapper) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	go m.run(ctx)
}

// Close stops the loop and removes every mapping from the router.
func (m *Mapper) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	started := m.started
	m.mu.Unlock()
	if started {
		m.cancel()
		<-m.done
	}
	return nil
}

// SetPorts replaces the set of wanted ports; the loop adds and removes
// mappings to match.
func (m *Mapper) SetPorts(ports ...Port) error {
	next := make(map[string]Port, len(ports))
	for _, p := range ports {
		if err := p.validate(); err != nil {
			return err
		}
		next[p.key()] = p
	}
	m.mu.Lock()
	m.wanted = next
	m.mu.Unlock()
	m.poke()
	return nil
}

// Leases returns the mappings in force, sorted by protocol and port.
func (m *Mapper) Leases() []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leasesLocked()
}

func (m *Mapper) leasesLocked() []Lease {
	out := make([]Lease, 0, len(m.leases))
	for _, l := range m.leases {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b Lease) int {
		if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		return int(a.InternalPort) - int(b.InternalPort)
	})
	return out
}

// Diagnosis returns what is known now about reachability.
func (m *Mapper) Diagnosis() Diagnosis {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.diag
	d.Leases = m.leasesLocked()
	return d
}

func (m *Mapper) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Mapper) setDiag(d Diagnosis) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.Hint == "" {
		d.Hint = hints[d.Status]
	}
	d.Since = m.diag.Since
	if d.Status != m.diag.Status || d.UPnPCode != m.diag.UPnPCode {
		d.Since = time.Now()
		m.log.Info("port mapping status", "status", d.Status, "external_ip", d.ExternalIP,
			"gateway", d.Gateway, "upnp_code", d.UPnPCode, "detail", d.Detail)
	}
	m.diag = d
}

func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
	defer m.removeAll()
	backoff := m.cfg.RetryMin
	for {
		m.mu.Lock()
		gw := m.gw
		m.mu.Unlock()
		var wait time.Duration
		if gw == nil {
			g, err := discover(ctx, m.loc, max(m.cfg.CallTimeout, 3*time.Second))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				m.setDiag(Diagnosis{Status: StatusNoGateway, Detail: err.Error()})
				wait = backoff
				backoff = min(2*backoff, m.cfg.RetryMax)
			} else {
				m.log.Info("found gateway", "service", g.service, "location", g.location, "local_ip", g.localIP)
				m.mu.Lock()
				m.gw = g
				// A new (or rebooted) router has none of our mappings.
				clear(m.leases)
				m.mu.Unlock()
				continue
			}
		} else {
			next, err := m.sync(ctx, gw)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// The router stopped answering: forget it, rediscover.
				m.log.Warn("gateway lost", "location", gw.location, "err", err)
				m.mu.Lock()
				m.gw = nil
				m.mu.Unlock()
				m.setDiag(Diagnosis{Status: StatusNoGateway, Gateway: gw.location, Detail: err.Error()})
				wait = backoff
				backoff = min(2*backoff, m.cfg.RetryMax)
			} else {
				backoff = m.cfg.RetryMin
				wait = time.Until(next)
			}
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sync brings the router in line with the wanted ports and returns when it
// next needs attention. An error means the router did not answer at all;
// refusals are recorded in the diagnosis and are not errors here.
func (m *Mapper) sync(ctx context.Context, gw *gateway) (time.Time, error) {
	now := time.Now()
	next := now.Add(m.cfg.CheckInterval)
	ext, extStatus, extErr := m.externalAddress(ctx, gw)
	if extErr != nil && upnpCode(extErr) == 0 {
		return next, fmt.Errorf("GetExternalIPAddress: %w", extErr)
	}
	wanted, stale := m.takeStale()
	if err := m.removeStale(ctx, gw, stale); err != nil {
		return next, err
	}
	var refusal error
	for _, p := range wanted {
		l, err := m.keepMapped(ctx, gw, p, now)
		if err != nil {
			if upnpCode(err) == 0 {
				return next, err
			}
			refusal = err // the router said no: diagnosed, not fatal
			continue
		}
		if l.Duration > 0 {
			if r := l.Renewed.Add(l.Duration / 2); r.Before(next) {
				next = r
			}
		}
	}
	m.setDiag(diagnose(gw, ext, extStatus, extErr, refusal))
	return next, nil
}

// externalAddress asks the router for its internet address and classifies
// it; a UPnP error (the router's answer, not a failure to ask) comes back
// with StatusNoWANAddress.
func (m *Mapper) externalAddress(ctx context.Context, gw *gateway) (netip.Addr, Status, error) {
	s, err := m.call(ctx, func(c context.Context) (string, error) { return gw.client.GetExternalIPAddressCtx(c) })
	ext, st := classifyExternal(s)
	return ext, st, err
}

// takeStale returns the wanted ports, and takes out of the leases those
// no longer wanted, for removeStale.
func (m *Mapper) takeStale() (wanted []Port, stale []Lease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wanted = make([]Port, 0, len(m.wanted))
	for _, p := range m.wanted {
		wanted = append(wanted, p)
	}
	for k, l := range m.leases {
		if _, ok := m.wanted[k]; !ok {
			stale = append(stale, *l)
			delete(m.leases, k)
		}
	}
	return wanted, stale
}

// removeStale removes the mappings of ports no longer wanted; a router's
// refusal to remove one is not an error (the lease runs out).
func (m *Mapper) removeStale(ctx context.Context, gw *gateway, stale []Lease) error {
	for _, l := range stale {
		if err := m.remove(ctx, gw, l); err != nil && upnpCode(err) == 0 {
			return err
		}
	}
	return nil
}

// keepMapped keeps p mapped and returns its lease: it adds a missing
// mapping, renews one in place at half its lease, and re-creates one the
// router forgot (after a reboot). When the router refuses (a UPnP error)
// the lease is dropped and the error returned.
func (m *Mapper) keepMapped(ctx context.Context, gw *gateway, p Port, now time.Time) (Lease, error) {
	m.mu.Lock()
	cur := m.leases[p.key()]
	var l Lease
	if cur != nil {
		l = *cur
	}
	m.mu.Unlock()

	due := cur == nil
	if cur != nil && l.Duration > 0 && !now.Before(l.Renewed.Add(l.Duration/2)) {
		due = true // renew in place at half the lease
	}
	if !due {
		present, err := m.present(ctx, gw, l)
		if err != nil {
			return l, err
		}
		if present {
			return l, nil
		}
		m.log.Info("mapping vanished from router; re-creating", "proto", l.Protocol, "external_port", l.ExternalPort)
	}
	nl, err := m.add(ctx, gw, p, cur)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if upnpCode(err) != 0 {
			delete(m.leases, p.key())
		}
		return l, err
	}
	m.leases[p.key()] = &nl
	return nl, nil
}

// diagnose turns one pass's findings into the Diagnosis, naming the root
// cause when there are several.
func diagnose(gw *gateway, ext netip.Addr, extStatus Status, extErr, refusal error) Diagnosis {
	d := Diagnosis{Gateway: gw.service + " " + gw.location, ExternalIP: ext}
	var ue *UPnPError
	if errors.As(refusal, &ue) {
		d.UPnPCode, d.UPnPText, d.Detail = ue.Code, ue.Description, refusal.Error()
	}
	switch {
	case extStatus == StatusCGNAT:
		// The root cause even when the router also refused: routers
		// refuse to forward from a non-public address (miniupnpd does).
		d.Status = StatusCGNAT
	case extErr != nil || extStatus == StatusNoWANAddress:
		// Before refusals: without a WAN address a refusal is only a
		// consequence. miniupnpd withholds a private WAN address this way.
		d.Status = StatusNoWANAddress
		if extErr != nil {
			d.Detail = extErr.Error()
		}
	case refusal != nil:
		d.Status = StatusRefused
	default:
		d.Status = extStatus
	}
	return d
}

// call runs one SOAP call under CallTimeout and turns faults into *UPnPError.
func (m *Mapper) call(ctx context.Context, f func(context.Context) (string, error)) (string, error) {
	c, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	s, err := f(c)
	return s, upnpError(err)
}

func (m *Mapper) do(ctx context.Context, f func(context.Context) error) error {
	_, err := m.call(ctx, func(c context.Context) (string, error) { return "", f(c) })
	return err
}

// present asks the router whether our mapping is still there and ours.
func (m *Mapper) present(ctx context.Context, gw *gateway, l Lease) (bool, error) {
	var client string
	err := m.do(ctx, func(c context.Context) error {
		var err error
		_, client, _, _, _, err = gw.client.GetSpecificPortMappingEntryCtx(c, "", l.ExternalPort, l.Protocol)
		return err
	})
	switch {
	case err == nil:
		return client == l.InternalClient, nil
	case upnpCode(err) != 0:
		return false, nil // 714 NoSuchEntryInArray, or a router that won't say
	default:
		return false, fmt.Errorf("GetSpecificPortMappingEntry: %w", err)
	}
}

// add maps p, renewing cur in place if there is one. It keeps the external
// port across restarts (state file), learns permanent-only routers (725) and
// moves to another external port when the wanted one is taken.
func (m *Mapper) add(ctx context.Context, gw *gateway, p Port, cur *Lease) (Lease, error) {
	ext := p.Internal
	if cur != nil {
		ext = cur.ExternalPort
	} else if e, ok := m.state.get(p.key()); ok {
		ext = e
	}
	client := gw.localIP.String()
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		lease := uint32(m.cfg.Lease / time.Second)
		if gw.permanentOnly {
			lease = 0
		}
		err := m.do(ctx, func(c context.Context) error {
			return gw.client.AddPortMappingCtx(c, "", ext, p.Protocol, p.Internal, client, true, Description, lease)
		})
		switch code := upnpCode(err); {
		case err == nil:
			l := Lease{Protocol: p.Protocol, InternalPort: p.Internal, ExternalPort: ext,
				InternalClient: client, Duration: time.Duration(lease) * time.Second, Renewed: time.Now()}
			if cur == nil || cur.ExternalPort != ext {
				m.log.Info("mapped port", "proto", p.Protocol, "internal", p.Internal, "external", ext, "lease", l.Duration)
			}
			m.saveExternal(p.key(), ext)
			return l, nil
		case code == codeOnlyPermanentLeases && !gw.permanentOnly:
			m.log.Info("router accepts only permanent mappings; using lease 0", "gateway", gw.location)
			gw.permanentOnly = true
		case code == codeSamePortRequired && ext != p.Internal:
			ext = p.Internal
		case code == codeConflict || code == codeConflictWithOtherMec:
			lastErr = err
			if adder, ok := gw.client.(anyPortAdder); ok && attempt == 0 {
				var got uint16
				err := m.do(ctx, func(c context.Context) error {
					var err error
					got, err = adder.AddAnyPortMappingCtx(c, "", ext, p.Protocol, p.Internal, client, true, Description, lease)
					return err
				})
				if err == nil && got != 0 {
					l := Lease{Protocol: p.Protocol, InternalPort: p.Internal, ExternalPort: got,
						InternalClient: client, Duration: time.Duration(lease) * time.Second, Renewed: time.Now()}
					m.log.Info("mapped port on router-chosen external port", "proto", p.Protocol, "internal", p.Internal, "external", got)
					m.saveExternal(p.key(), got)
					return l, nil
				}
				if err != nil && upnpCode(err) == 0 {
					return Lease{}, err
				}
			}
			ext = uint16(1024 + rand.IntN(65535-1024))
		default:
			if code == 0 {
				return Lease{}, fmt.Errorf("AddPortMapping %s %d: %w", p.Protocol, ext, err)
			}
			return Lease{}, err
		}
	}
	return Lease{}, lastErr
}

func (m *Mapper) saveExternal(key string, ext uint16) {
	if m.cfg.StateFile == "" {
		return
	}
	if e, ok := m.state.get(key); ok && e == ext {
		return
	}
	m.state.set(key, ext)
	if err := m.state.save(m.cfg.StateFile); err != nil {
		m.log.Warn("cannot keep chosen external port", "file", m.cfg.StateFile, "err", err)
	}
}

func (m *Mapper) remove(ctx context.Context, gw *gateway, l Lease) error {
	err := m.do(ctx, func(c context.Context) error {
		return gw.client.DeletePortMappingCtx(c, "", l.ExternalPort, l.Protocol)
	})
	if err != nil {
		m.log.Warn("could not remove mapping", "proto", l.Protocol, "external", l.ExternalPort, "err", err)
		return err
	}
	m.log.Info("removed mapping", "proto", l.Protocol, "external", l.ExternalPort)
	return nil
}

// removeAll deletes every mapping on shutdown, with a fresh deadline since
// the run context is already done.
func (m *Mapper) removeAll() {
	m.mu.Lock()
	gw := m.gw
	leases := m.leasesLocked()
	clear(m.leases)
	m.mu.Unlock()
	if gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*m.cfg.CallTimeout)
	defer cancel()
	for _, l := range leases {
		_ = m.remove(ctx, gw, l)
	}
}
