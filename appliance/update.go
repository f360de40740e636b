package appliance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/report"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/update"
)

// Health implements admin.HealthBackend: what the firmware update's commit
// step (homenode update commit, outside this process) waits for on the
// trial boot of a new version before it makes the version permanent.
func (a *Appliance) Health(ctx context.Context) (status.Health, error) {
	h := status.Health{Ready: a.ready.Load(), Version: a.opts.Version, Store: "ok"}
	if err := a.healthy(ctx); err != nil {
		h.Store = err.Error()
	}
	for _, ma := range a.node.Host.Network().ListenAddresses() {
		h.Listen = append(h.Listen, ma.String())
	}
	return h, nil
}

// onTrialBoot reports whether this is the trial boot of a firmware update
// (the A/B image): the store then keeps a snapshot before migrating, so the
// previous version can take it back if the update is rolled back.
func onTrialBoot(dataDir string) bool {
	return update.TrialBoot("/proc/cmdline", update.Dir(filepath.Join(dataDir, "update")))
}

func (a *Appliance) updater() *updater { return a.upd.Load() }

// startUpdater runs the firmware updater when the node runs on the A/B
// image; elsewhere (Debian, Raspberry Pi OS: apt updates it) it does
// nothing.
func (a *Appliance) startUpdater(ctx context.Context, wg *sync.WaitGroup) {
	sys, err := update.Detect(update.DetectOptions{Version: a.opts.Version, StateDir: filepath.Join(a.cfg.DataDir, "update")})
	if errors.Is(err, update.ErrNotAB) {
		return
	}
	if err != nil {
		a.log.Warn("firmware updates unavailable", "err", err)
		return
	}
	u := newUpdater(sys, a.node.Store.Meta(updateBucket), a.log)
	u.clockOK = a.clockOK.Load
	u.busy = (&busyMeter{node: a}).busy
	u.report = a.reportUpdate
	a.upd.Store(u)
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.run(ctx)
	}()
	a.log.Info("firmware updates", "slot", sys.Current, "board", sys.Compatible, "keys", sys.Keyring.IDs())
}

// updateReport is the Update section of the status report.
func (a *Appliance) updateReport() *status.Update {
	if u := a.updater(); u != nil {
		return u.Report()
	}
	return nil
}

// busyMeter says whether the node is in a sync storm: storing messages
// fast, or syncing with many peers at once.
type busyMeter struct {
	node  *Appliance
	mu    sync.Mutex
	at    time.Time
	count int
}

func (m *busyMeter) busy() bool {
	if len(m.node.node.Sync.Peers()) > busyPeers {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sample := func() (int, time.Time) {
		st, err := m.node.node.Store.Stats()
		if err != nil {
			return 0, time.Now()
		}
		return st.Messages, time.Now()
	}
	if time.Since(m.at) > 2*busyRecheck {
		m.count, m.at = sample()
		time.Sleep(10 * time.Second)
	}
	n, now := sample()
	perSec := float64(n-m.count) / now.Sub(m.at).Seconds()
	m.count, m.at = n, now
	return perSec > busyMessages
}

// nodeIdentity is the node's identity as a message author: its libp2p
// Ed25519 key, so the owner's devices know which node wrote.
func (a *Appliance) nodeIdentity() (*channel.Identity, error) {
	h := a.node.Host
	k := h.Peerstore().PrivKey(h.ID())
	if k == nil || k.Type() != crypto.Ed25519 {
		return nil, errors.New("the node's key is not Ed25519")
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, err
	}
	return channel.IdentityFromSeed(raw[:32])
}

// reportUpdate posts how an update ended into the owner's master channel,
// with the write-only key the owner gave; without one, the journal and the
// status page are all.
func (a *Appliance) reportUpdate(ctx context.Context, r update.Result) error {
	ks, err := a.node.Store.Meta(updateBucket).Get(keyReportKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	k, err := channel.ParseKey(string(ks))
	if err != nil {
		return err
	}
	id, err := a.nodeIdentity()
	if err != nil {
		return err
	}
	body, err := report.Encode(report.Report{Kind: report.KindUpdate, Text: r.Message(), At: r.At, Outcome: r.Outcome,
		Version: r.Version, From: r.From, Running: r.Running, Tries: r.Tries})
	if err != nil {
		return err
	}
	env, err := k.Seal(id, channel.KindControl, body, time.Now(), rand.Reader)
	if err != nil {
		return err
	}
	if _, err := a.node.Sync.Publish(ctx, env); err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	a.log.Info("update: the owner was told", "report", r.Message())
	return nil
}

// setReportKey keeps the write-only key of the owner's master channel.
func (a *Appliance) setReportKey(key string) error {
	k, err := channel.ParseKey(key)
	if err != nil {
		return err
	}
	if k.CanRead() || !k.CanWrite() {
		return fmt.Errorf("%w: the report key must be write-only (rpw…), this one is %s", owner.ErrBadReportKey, k.Capability())
	}
	if err := a.node.Store.Meta(updateBucket).Put(keyReportKey, []byte(key)); err != nil {
		return err
	}
	a.log.Info("the owner gave a write-only key of its master channel for reports", "channel", k.ID().String())
	if u := a.updater(); u != nil {
		u.Poke() // an outcome not yet told goes out now
	}
	return nil
}

// ownerUpdates is the owner protocol's update backend (owner.Updates).
type ownerUpdates struct{ a *Appliance }

var _ owner.Updates = ownerUpdates{}

func (o ownerUpdates) u() (*updater, error) {
	if u := o.a.updater(); u != nil {
		return u, nil
	}
	return nil, owner.ErrNoUpdates
}

func (o ownerUpdates) State(ctx context.Context) (owner.UpdateState, error) {
	u, err := o.u()
	if err != nil {
		return owner.UpdateState{}, err
	}
	return owner.UpdateState{Update: *u.Report(), Settings: u.Settings()}, nil
}

func (o ownerUpdates) Configure(ctx context.Context, s owner.UpdateSettings) error {
	u, err := o.u()
	if err != nil {
		return err
	}
	return u.SetSettings(s)
}

func (o ownerUpdates) Check(ctx context.Context) error {
	u, err := o.u()
	if err != nil {
		return err
	}
	if u.Settings().Feed == "" {
		return errNoFeed
	}
	u.Poke()
	return nil
}

// Apply starts fetching and installing in the background: a download
// takes longer than the owner's request may wait. The outcome shows in the
// update state.
func (o ownerUpdates) Apply(ctx context.Context, ar owner.UpdateApply) error {
	u, err := o.u()
	if err != nil {
		return err
	}
	if ar.Uploaded != "" {
		if err := u.Apply(ctx, ar); err != nil {
			return fmt.Errorf("%w: %v", owner.ErrUpdateRefused, err)
		}
		return nil
	}
	if ar.URL == "" && u.Settings().Feed == "" {
		return errNoFeed
	}
	go func() {
		if err := u.Apply(context.Background(), ar); err != nil {
			u.log.Warn("update asked by the owner", "err", err)
		}
	}()
	return nil
}

func (o ownerUpdates) Upload(ctx context.Context, h owner.UploadHeader) (owner.UploadSink, error) {
	u, err := o.u()
	if err != nil {
		return nil, err
	}
	return u.receive(h)
}

func (o ownerUpdates) SetReportKey(key string) error { return o.a.setReportKey(key) }
