package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

// The daemon's part of firmware updates (docs/UPDATES.md). The daemon may
// not write the disk: it checks the release feed the owner set, downloads
// bundles (with resume and a bandwidth cap, never while the node is busy
// syncing), takes bundles the owner's phone carries, checks them, and then
// asks homenode-update.service (which may write the disk) to install one
// by writing request.json in the update directory. It shows what happens
// (status page, homenode status, STATUS=) and tells the owner how each
// update ended.

// Defaults of the owner's update settings.
const (
	DefaultUpdateInterval = 24 * time.Hour
	DefaultUpdateRate     = 2 << 20 // bytes per second
	minUpdateInterval     = time.Minute
	// MaxBundle bounds what is downloaded or uploaded.
	MaxBundle int64 = 4 << 30
	// firstCheckDelay lets a booting node settle before its first check.
	firstCheckDelay = 2 * time.Minute
	// announceEvery is how often an outcome not yet told is looked for.
	announceEvery = 30 * time.Second
)

// Sync storm: the node counts as busy while it stores more than
// busyMessages a second, or holds sessions with more than busyPeers peers;
// feed checks and downloads wait until it is not.
const (
	busyMessages = 20.0
	busyPeers    = 48
)

// busyRecheck is how often a busy node is asked again, and retryBackoff
// the first wait before a broken download resumes; tests shorten them.
var (
	busyRecheck  = 30 * time.Second
	retryBackoff = 10 * time.Second
)

func settingsInterval(s owner.UpdateSettings) time.Duration {
	d, err := time.ParseDuration(s.Interval)
	if err != nil || d < minUpdateInterval {
		return DefaultUpdateInterval
	}
	return d
}

func checkSettings(s owner.UpdateSettings) error {
	if s.Feed != "" {
		u, err := url.Parse(s.Feed)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("update feed %q: want an http(s) URL", s.Feed)
		}
	}
	if s.Interval != "" {
		d, err := time.ParseDuration(s.Interval)
		if err != nil || d < minUpdateInterval {
			return fmt.Errorf("update interval %q: want a duration of at least %s", s.Interval, minUpdateInterval)
		}
	}
	if s.Rate < -1 {
		return fmt.Errorf("update rate %d: want bytes per second, 0 (default) or -1 (no cap)", s.Rate)
	}
	return nil
}

var (
	updateBucket  = "update"
	keySettings   = []byte("settings")
	keyAnnounced  = []byte("announced")
	keyReportKey  = []byte("report-key")
	errNoFeed     = errors.New("update: no release feed set")
	errUpdateBusy = errors.New("update: an update is already being fetched or installed")
)

// updater runs in the daemon of an A/B system.
type updater struct {
	sys     *update.System // layout, keys, running version; never written from here
	meta    *store.Meta
	log     *slog.Logger
	client  *http.Client
	busy    func() bool
	clockOK func() bool
	// report tells the owner how an update ended (the master channel);
	// nil: the journal only.
	report func(ctx context.Context, r update.Result) error
	poke   chan struct{}

	mu        sync.Mutex
	settings  owner.UpdateSettings
	state     string // downloading, verifying (the daemon's own steps)
	version   string
	done      int64
	total     int64
	detail    string
	available string
	nextCheck time.Time
	working   bool
}

func newUpdater(sys *update.System, meta *store.Meta, log *slog.Logger) *updater {
	u := &updater{sys: sys, meta: meta, log: log.With("component", "update"),
		client: &http.Client{Timeout: 0}, busy: func() bool { return false }, clockOK: func() bool { return true },
		poke: make(chan struct{}, 1)}
	if b, err := meta.Get(keySettings); err == nil {
		if err := json.Unmarshal(b, &u.settings); err != nil {
			u.log.Warn("update settings unreadable; using defaults", "err", err)
		}
	}
	return u
}

// Settings returns the owner's settings.
func (u *updater) Settings() owner.UpdateSettings {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.settings
}

// SetSettings keeps new settings and checks the feed soon.
func (u *updater) SetSettings(s owner.UpdateSettings) error {
	if err := checkSettings(s); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	if err := u.meta.Put(keySettings, b); err != nil {
		return err
	}
	u.mu.Lock()
	u.settings = s
	u.mu.Unlock()
	u.log.Info("update settings changed by the owner", "feed", s.Feed, "interval", settingsInterval(s), "manual", s.Manual)
	u.Poke()
	return nil
}

// Poke makes the loop check the feed now.
func (u *updater) Poke() {
	select {
	case u.poke <- struct{}{}:
	default:
	}
}

// run checks the feed on the owner's schedule (with some jitter, so boxes
// do not all ask at once) and announces outcomes.
func (u *updater) run(ctx context.Context) {
	u.announce(ctx)
	next := firstCheckDelay + time.Duration(rand.Int64N(int64(time.Minute)))
	for {
		u.mu.Lock()
		u.nextCheck = time.Now().Add(next)
		u.mu.Unlock()
		t := time.NewTimer(next)
		// The commit step (another process) records an outcome after the
		// node has started: look for one now and then.
		tell := time.NewTicker(announceEvery)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				tell.Stop()
				return
			case <-tell.C:
				u.announce(ctx)
			case <-t.C:
				break wait
			case <-u.poke:
				t.Stop()
				break wait
			}
		}
		tell.Stop()
		u.announce(ctx)
		if err := u.checkFeed(ctx); err != nil && !errors.Is(err, errNoFeed) && ctx.Err() == nil {
			u.log.Warn("update check", "err", err)
		}
		iv := settingsInterval(u.Settings())
		next = iv - iv/10 + time.Duration(rand.Int64N(int64(iv/5)))
	}
}

// announce tells the owner, once, how the last update ended.
func (u *updater) announce(ctx context.Context) {
	rec, err := u.sys.State.ReadRecord()
	if err != nil || rec.Last == nil {
		return
	}
	if done, _ := u.meta.Get(keyAnnounced); string(done) == rec.Last.ID {
		return
	}
	if rec.Last.Outcome == update.Updated {
		u.log.Info("firmware: " + rec.Last.Message())
	} else {
		u.log.Warn("firmware: " + rec.Last.Message())
	}
	if u.report != nil {
		if err := u.report(ctx, *rec.Last); err != nil {
			u.log.Warn("update: the owner could not be told (tried again at the next check)", "err", err)
			return
		}
	}
	if err := u.meta.Put(keyAnnounced, []byte(rec.Last.ID)); err != nil {
		u.log.Warn("update: remembering the announcement", "err", err)
	}
}

// waitNotBusy blocks while the node is busy syncing.
func (u *updater) waitNotBusy(ctx context.Context) error {
	logged := false
	for u.busy() {
		if !logged {
			u.log.Info("update: the node is busy syncing; waiting")
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(busyRecheck):
		}
	}
	return nil
}

// checkFeed reads the owner's feed and, unless the owner wants to decide
// by hand, fetches and installs a newer release.
func (u *updater) checkFeed(ctx context.Context) error {
	s := u.Settings()
	if s.Feed == "" {
		return errNoFeed
	}
	if err := u.waitNotBusy(ctx); err != nil {
		return err
	}
	rel, ok, err := u.newest(ctx, s.Feed)
	if err != nil || !ok {
		return err
	}
	u.mu.Lock()
	u.available = rel.Version
	u.mu.Unlock()
	// A release whose trial failed here is not tried again by itself (it
	// would fail again, and again); the owner may still ask for it.
	if rec, err := u.sys.State.ReadRecord(); err == nil && rec.Last != nil &&
		rec.Last.Outcome == update.Failed && rec.Last.Version == rel.Version {
		u.log.Info("update: this release failed here before; not installing it again unasked", "version", rel.Version)
		return nil
	}
	if s.Manual {
		u.log.Info("update: a new release is available; waiting for the owner", "version", rel.Version)
		return nil
	}
	u.log.Info("update: a new release is available; fetching it", "version", rel.Version, "bytes", rel.Size)
	return u.Apply(ctx, owner.UpdateApply{Version: rel.Version})
}

// newest returns the feed's newest release for this board when it is
// newer than the running version.
func (u *updater) newest(ctx context.Context, feedURL string) (bundle.Release, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, feedURL, nil)
	if err != nil {
		return bundle.Release{}, false, err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := u.client.Do(req.WithContext(cctx))
	if err != nil {
		return bundle.Release{}, false, fmt.Errorf("update feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bundle.Release{}, false, fmt.Errorf("update feed %s: %s", feedURL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, bundle.MaxFeed+1))
	if err != nil {
		return bundle.Release{}, false, fmt.Errorf("update feed: %w", err)
	}
	feed, err := bundle.OpenFeed(b, u.sys.Keyring, time.Now(), u.clockOK())
	if err != nil {
		return bundle.Release{}, false, err
	}
	rel, ok := feed.Newest(u.sys.Compatible)
	if !ok || bundle.CompareVersions(rel.Version, u.sys.Version) <= 0 {
		u.mu.Lock()
		u.available = ""
		u.mu.Unlock()
		return rel, false, nil
	}
	return rel, true, nil
}

// Apply fetches what the owner (or the feed) asks for, checks it and asks
// the installer to install it. It returns once the request is written;
// the installation, the reboot and the commit follow.
func (u *updater) Apply(ctx context.Context, ar owner.UpdateApply) error {
	if !u.start() {
		return errUpdateBusy
	}
	defer u.finish()
	path, err := u.obtain(ctx, ar)
	if err != nil {
		u.fail("failed", ar.Version, err)
		return err
	}
	return u.request(path, ar.AllowOlder, sourceOf(ar))
}

func sourceOf(ar owner.UpdateApply) string {
	switch {
	case ar.Uploaded != "":
		return "phone"
	case ar.URL != "":
		return "url"
	}
	return "feed"
}

func (u *updater) start() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.working {
		return false
	}
	if p, ok, _ := u.sys.State.ReadProgress(); ok && installing(p) {
		return false
	}
	u.working, u.detail = true, ""
	return true
}

func (u *updater) finish() {
	u.mu.Lock()
	u.working = false
	if u.state != "refused" && u.state != "failed" {
		u.state = ""
	}
	u.mu.Unlock()
}

func (u *updater) fail(state, version string, err error) {
	u.mu.Lock()
	u.state, u.version, u.detail = state, version, err.Error()
	u.mu.Unlock()
	u.log.Warn("update "+state, "version", version, "err", err)
}

func (u *updater) setStep(state, version string, done, total int64) {
	u.mu.Lock()
	u.state, u.version, u.done, u.total = state, version, done, total
	u.mu.Unlock()
}

// obtain returns a spooled bundle file for ar.
func (u *updater) obtain(ctx context.Context, ar owner.UpdateApply) (string, error) {
	if err := u.sys.State.Ensure(); err != nil {
		return "", err
	}
	switch {
	case ar.Uploaded != "":
		return u.sys.State.SpoolFile(ar.Uploaded)
	case ar.URL != "":
		h := sha256.Sum256([]byte(ar.URL))
		return u.download(ctx, ar.URL, "url-"+hex.EncodeToString(h[:8]), 0, "", ar.Version)
	}
	s := u.Settings()
	if s.Feed == "" {
		return "", errNoFeed
	}
	rel, ok, err := u.newest(ctx, s.Feed)
	if err != nil {
		return "", err
	}
	if ar.Version != "" && (!ok || rel.Version != ar.Version) {
		// The owner may ask for an older release of the feed (with
		// allow_older) or the one just seen; look it up.
		rel, ok, err = u.release(ctx, s.Feed, ar.Version)
		if err != nil {
			return "", err
		}
	}
	if !ok {
		return "", fmt.Errorf("update: no release %q for %s in the feed", ar.Version, u.sys.Compatible)
	}
	ref, err := url.Parse(rel.URL)
	if err != nil {
		return "", fmt.Errorf("update feed: release URL %q: %w", rel.URL, err)
	}
	base, _ := url.Parse(s.Feed)
	return u.download(ctx, base.ResolveReference(ref).String(), rel.SHA256[:16], rel.Size, rel.SHA256, rel.Version)
}

// release finds a version in the feed, whatever its age.
func (u *updater) release(ctx context.Context, feedURL, version string) (bundle.Release, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, feedURL, nil)
	if err != nil {
		return bundle.Release{}, false, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return bundle.Release{}, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, bundle.MaxFeed+1))
	if err != nil {
		return bundle.Release{}, false, err
	}
	feed, err := bundle.OpenFeed(b, u.sys.Keyring, time.Now(), u.clockOK())
	if err != nil {
		return bundle.Release{}, false, err
	}
	for _, r := range feed.Releases {
		if r.Version == version && r.Compatible == u.sys.Compatible {
			return r, true, nil
		}
	}
	return bundle.Release{}, false, nil
}

// download fetches src into the spool as name.rpb, resuming name.part
// from where an earlier attempt (or a power cut) left it, at most at the
// owner's rate, pausing while the node is busy. size and sum, when known
// (from the feed), are checked; the bundle's own signature is checked
// after, in any case.
func (u *updater) download(ctx context.Context, src, name string, size int64, sum, version string) (string, error) {
	final, err := u.sys.State.SpoolFile(name + ".rpb")
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(final); err == nil && (size == 0 || st.Size() == size) {
		return final, nil // fetched before; checked again below
	}
	part := final[:len(final)-len(".rpb")] + ".part"
	if size > MaxBundle {
		return "", fmt.Errorf("update: bundle of %d bytes, limit %d", size, MaxBundle)
	}
	lim := u.limiter()
	for attempt := 0; ; attempt++ {
		if err := u.waitNotBusy(ctx); err != nil {
			return "", err
		}
		err := u.fetchOnce(ctx, src, part, size, version, lim)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= 5 || errors.Is(err, errNotResumable) {
			return "", err
		}
		u.log.Info("update: download interrupted; resuming", "err", err, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(attempt+1) * retryBackoff):
		}
	}
	if sum != "" {
		f, err := os.Open(part)
		if err != nil {
			return "", err
		}
		got, err := bundle.FileSHA256(f)
		f.Close()
		if err != nil {
			return "", err
		}
		if got != sum {
			os.Remove(part)
			return "", fmt.Errorf("update: the downloaded file does not match the feed's SHA-256 (deleted)")
		}
	}
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	return final, nil
}

var errNotResumable = errors.New("update: download cannot go on")

func (u *updater) limiter() *rate.Limiter {
	r := u.Settings().Rate
	switch {
	case r == 0:
		r = DefaultUpdateRate
	case r < 0:
		return nil
	}
	return rate.NewLimiter(rate.Limit(r), int(min(r, 1<<20)))
}

// fetchOnce continues part from its current length.
func (u *updater) fetchOnce(ctx context.Context, src, part string, size int64, version string, lim *rate.Limiter) error {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if size > 0 && have >= size {
		if have > size {
			return errors.Join(errNotResumable, f.Truncate(0), fmt.Errorf("partial download larger than the release"))
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotResumable, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the server ignored the range: start over
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			have = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		f.Truncate(0)
		return fmt.Errorf("update: %s: %s (starting over)", src, resp.Status)
	default:
		return fmt.Errorf("%w: %s: %s", errNotResumable, src, resp.Status)
	}
	total := size
	if total == 0 && resp.ContentLength > 0 {
		total = have + resp.ContentLength
	}
	if total > MaxBundle {
		return fmt.Errorf("%w: bundle of %d bytes, limit %d", errNotResumable, total, MaxBundle)
	}
	if err := enoughSpace(filepath.Dir(part), total-have); err != nil {
		return fmt.Errorf("%w: %v", errNotResumable, err)
	}
	u.setStep("downloading", version, have, total)
	buf := make([]byte, 64<<10)
	lastCheck := time.Now()
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if lim != nil {
				if err := lim.WaitN(ctx, n); err != nil {
					return err
				}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			have += int64(n)
			u.setStep("downloading", version, have, total)
			if size > 0 && have > size {
				f.Truncate(0)
				return fmt.Errorf("%w: more bytes than the feed says", errNotResumable)
			}
			if time.Since(lastCheck) > busyRecheck {
				lastCheck = time.Now()
				if u.busy() {
					return errors.New("the node got busy syncing; pausing the download")
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if size > 0 && have != size {
		return fmt.Errorf("update: %d of %d bytes", have, size)
	}
	return nil
}

func enoughSpace(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown: let the write fail if it must
	}
	// Keep 64 MiB for the node's own store.
	if free := int64(st.Bavail) * int64(st.Bsize); free-64<<20 < need {
		return fmt.Errorf("update: %d bytes needed, %d free on the data partition", need, free)
	}
	return nil
}

// request checks the spooled bundle as the installer will (signature,
// board, version, payload) and asks for its installation.
func (u *updater) request(path string, allowOlder bool, source string) error {
	b, f, err := bundle.OpenFile(path, u.sys.Keyring)
	if err != nil {
		os.Remove(path)
		u.fail("refused", "", err)
		return err
	}
	defer f.Close()
	v := b.Manifest.Version
	if err := b.Check(bundle.Policy{Compatible: u.sys.Compatible, Running: u.sys.Version, AllowOlder: allowOlder}); err != nil {
		os.Remove(path)
		u.fail("refused", v, err)
		return err
	}
	u.setStep("verifying", v, 0, b.Manifest.Payload.Size)
	if err := b.VerifyPayload(func(n int64) { u.setStep("verifying", v, n, b.Manifest.Payload.Size) }); err != nil {
		os.Remove(path)
		u.fail("refused", v, err)
		return err
	}
	if err := u.sys.State.WriteRequest(update.Request{Bundle: filepath.Base(path), AllowOlder: allowOlder, Source: source}); err != nil {
		u.fail("failed", v, err)
		return err
	}
	u.log.Info("update: bundle checked; the installer takes it from here", "version", v, "source", source)
	return nil
}

func installing(p update.Progress) bool {
	switch p.Phase {
	case update.PhaseVerifying, update.PhaseWriting, update.PhaseChecking, update.PhaseRebooting, update.PhaseInstalled:
		return time.Since(p.Updated) < 10*time.Minute || p.Phase == update.PhaseInstalled
	}
	return false
}

// Report is the update part of the status report.
func (u *updater) Report() *status.Update {
	r := &status.Update{Slot: string(u.sys.Current), State: "idle"}
	rec, _ := u.sys.State.ReadRecord()
	if l := rec.Last; l != nil {
		r.Last, r.LastAt = l.Message(), l.At
	}
	if t := rec.Trial; t != nil && t.Slot == u.sys.Current {
		r.State, r.Version = "on trial", t.Version
	} else if c := rec.CommitFailed; c != nil {
		// The commit step failed on a boot that was not a trial: the
		// board stayed up, and the owner should know.
		r.State, r.Version, r.Detail = "not committed", u.sys.Version, c.Error
	}
	if p, ok, _ := u.sys.State.ReadProgress(); ok {
		switch p.Phase {
		case update.PhaseRefused, update.PhaseFailed:
			r.State, r.Version, r.Detail = p.Phase, p.Version, p.Error
		case update.PhaseInstalled:
			r.State, r.Version = "rebooting", p.Version
		default:
			if installing(p) {
				r.State, r.Version, r.Percent = p.Phase, p.Version, p.Percent()
			}
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != "" && (u.working || u.state == "refused" || u.state == "failed") {
		r.State, r.Version, r.Detail = u.state, u.version, u.detail
		if u.total > 0 {
			r.Percent = int(u.done * 100 / u.total)
		}
	}
	r.Feed, r.NextCheck = u.settings.Feed, u.nextCheck
	if u.available != "" && bundle.CompareVersions(u.available, u.sys.Version) > 0 {
		r.Available = u.available
	}
	for _, id := range u.sys.Keyring.IDs() {
		if u.sys.Keyring.Name(id) == "dev-release" {
			r.DevKeys = true
		}
	}
	return r
}

// upload is a bundle arriving from the owner's phone, into the spool as
// upload-HASH.part; an interrupted upload resumes from its length.
type upload struct {
	u    *updater
	h    owner.UploadHeader
	name string // upload-HASH.rpb
	f    *os.File
	have int64
}

func (u *updater) receive(h owner.UploadHeader) (*upload, error) {
	if err := u.sys.State.Ensure(); err != nil {
		return nil, err
	}
	name := "upload-" + h.SHA256[:16] + ".rpb"
	final, err := u.sys.State.SpoolFile(name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(final); err == nil && st.Size() == h.Size {
		return &upload{u: u, h: h, name: name, have: h.Size}, nil
	}
	if !u.start() {
		return nil, errUpdateBusy
	}
	f, err := os.OpenFile(final[:len(final)-4]+".part", os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		u.finish()
		return nil, err
	}
	have, err := f.Seek(0, io.SeekEnd)
	if err == nil && have > h.Size {
		have, err = 0, f.Truncate(0)
		f.Seek(0, io.SeekStart)
	}
	if err == nil {
		err = enoughSpace(u.sys.State.Spool(), h.Size-have)
	}
	if err != nil {
		f.Close()
		u.finish()
		return nil, err
	}
	u.setStep("receiving", "", have, h.Size)
	u.log.Info("update: receiving a bundle from the owner's phone", "bytes", h.Size, "resuming_at", have)
	return &upload{u: u, h: h, name: name, f: f, have: have}, nil
}

func (up *upload) Offset() int64 { return up.have }

func (up *upload) Write(p []byte) (int, error) {
	if up.f == nil {
		return 0, errors.New("update: this bundle is already in")
	}
	n, err := up.f.Write(p)
	up.have += int64(n)
	up.u.setStep("receiving", "", up.have, up.h.Size)
	return n, err
}

func (up *upload) Abort() {
	if up.f != nil {
		up.f.Sync()
		up.f.Close()
		up.u.finish()
	}
}

// Done checks the upload and, when asked, has it installed.
func (up *upload) Done(ctx context.Context) (string, error) {
	final, _ := up.u.sys.State.SpoolFile(up.name)
	if up.f != nil {
		err := up.f.Sync()
		if cerr := up.f.Close(); err == nil {
			err = cerr
		}
		up.u.finish()
		part := final[:len(final)-4] + ".part"
		if err != nil {
			return "", err
		}
		f, err := os.Open(part)
		if err != nil {
			return "", err
		}
		sum, err := bundle.FileSHA256(f)
		f.Close()
		if err != nil {
			return "", err
		}
		if sum != up.h.SHA256 || up.have != up.h.Size {
			os.Remove(part)
			return "", fmt.Errorf("%w: the upload does not match its SHA-256 (deleted; send it again)", owner.ErrUpdateRefused)
		}
		if err := os.Rename(part, final); err != nil {
			return "", err
		}
	}
	if up.h.Apply {
		if err := up.u.Apply(ctx, owner.UpdateApply{Uploaded: up.name, AllowOlder: up.h.AllowOlder}); err != nil {
			return "", fmt.Errorf("%w: %v", owner.ErrUpdateRefused, err)
		}
		return up.name, nil
	}
	// Kept for an "update-apply"; checked now so the phone hears of a bad
	// bundle at once.
	b, f, err := bundle.OpenFile(final, up.u.sys.Keyring)
	if err == nil {
		f.Close()
		err = b.Check(bundle.Policy{Compatible: up.u.sys.Compatible, Running: up.u.sys.Version, AllowOlder: true})
	}
	if err != nil {
		os.Remove(final)
		return "", fmt.Errorf("%w: %v", owner.ErrUpdateRefused, err)
	}
	return up.name, nil
}
