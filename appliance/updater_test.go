package appliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

func devKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("../update/keys/dev-release.key")
	if err != nil {
		t.Fatal(err)
	}
	k, err := bundle.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testImage is the root slot image of version v in the test bundles: half
// random-ish, half zeros.
func testImage(v string) []byte {
	r := rand.New(rand.NewPCG(uint64(len(v)), 3))
	img := make([]byte, 512<<10)
	for i := range img[:256<<10] {
		img[i] = byte(r.Uint32())
	}
	return img
}

// makeBundleFile writes a bundle of testImage(v) as version v.
func makeBundleFile(t *testing.T, dir, v string, key ed25519.PrivateKey) string {
	t.Helper()
	img := testImage(v)
	tmp, err := os.CreateTemp(dir, "payload")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	p := filepath.Join(dir, "homenode-"+v+".rpb")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := bundle.Create(out, bytes.NewReader(img), tmp, bundle.Options{Compatible: "rpi-arm64", Version: v,
		Signers: []ed25519.PrivateKey{key}, Compression: bundle.CompressionNone}); err != nil {
		t.Fatal(err)
	}
	return p
}

// releaseServer serves a signed feed of the bundles in dir at /feed.json
// and the bundles themselves, with Range support. cut, when set, makes the
// first request of each bundle stop after that many bytes.
type releaseServer struct {
	*httptest.Server
	dir string
	cut int64
	// hold, when set, makes the first request of each bundle send half
	// of it and wait until hold is closed (a download in progress).
	hold   chan struct{}
	mu     sync.Mutex
	ranges []string // Range headers of bundle requests
	hits   atomic.Int32
}

func newReleaseServer(t *testing.T, dir string, feedKey ed25519.PrivateKey, bundles ...string) *releaseServer {
	t.Helper()
	rs := &releaseServer{dir: dir}
	mux := http.NewServeMux()
	rs.Server = httptest.NewServer(mux)
	t.Cleanup(rs.Close)
	var feed bundle.Feed
	feed.Format, feed.Issued, feed.Expires = 1, time.Now(), time.Now().Add(time.Hour)
	for _, p := range bundles {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		// Read the version without trusting the signature (the feed
		// may list a bundle the box will refuse).
		b, _, err := bundle.OpenFile(p, bundle.NewKeyring(pubOf(p, t)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		sum, _ := bundle.FileSHA256(f)
		st, _ := f.Stat()
		f.Close()
		feed.Releases = append(feed.Releases, bundle.Release{Version: b.Manifest.Version, Compatible: b.Manifest.Compatible,
			URL: filepath.Base(p), Size: st.Size(), SHA256: sum})
	}
	signed, err := bundle.SignFeed(feed, []ed25519.PrivateKey{feedKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]bool{}
	mux.HandleFunc("/feed.json", func(w http.ResponseWriter, r *http.Request) { w.Write(signed) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rs.hits.Add(1)
		name := filepath.Base(r.URL.Path)
		rs.mu.Lock()
		rs.ranges = append(rs.ranges, r.Header.Get("Range"))
		cutNow := rs.cut > 0 && !first[name]
		holdNow := rs.hold != nil && !first[name]
		first[name] = true
		rs.mu.Unlock()
		f, err := os.Open(filepath.Join(rs.dir, name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		if cutNow {
			// A connection that drops part way (a power cut of the
			// router, a flaky link).
			st, _ := f.Stat()
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
			w.WriteHeader(http.StatusOK)
			buf := make([]byte, rs.cut)
			n, _ := f.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if holdNow {
			st, _ := f.Stat()
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
			w.WriteHeader(http.StatusOK)
			if _, err := io.CopyN(w, f, st.Size()/2); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-rs.hold:
			case <-r.Context().Done():
				return
			}
			io.Copy(w, f)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, f)
	})
	return rs
}

func x509PEM(k ed25519.PrivateKey) ([]byte, error) {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}), nil
}

// pubOf finds which of the test keys signed p (the dev key or the one
// stored beside it).
func pubOf(p string, t *testing.T) ed25519.PublicKey {
	if b, err := os.ReadFile(p + ".signer"); err == nil {
		k, err := bundle.ParsePrivateKey(b)
		if err == nil {
			return k.Public().(ed25519.PublicKey)
		}
	}
	return devKey(t).Public().(ed25519.PublicKey)
}

// testUpdater is an updater of a box running version v in slot A, with
// its state directory and store in temporary directories.
func testUpdater(t *testing.T, v string) *updater {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "messages.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sys := &update.System{Current: update.SlotA, Compatible: "rpi-arm64", Version: v,
		Keyring: bundle.NewKeyring(devKey(t).Public().(ed25519.PublicKey)), State: update.Dir(filepath.Join(dir, "update"))}
	u := newUpdater(sys, db.Meta(updateBucket), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	return u
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestFeedFetchesAndRequests(t *testing.T) {
	rel := t.TempDir()
	b := makeBundleFile(t, rel, "1.1-1", devKey(t))
	older := makeBundleFile(t, rel, "0.9-1", devKey(t))
	rs := newReleaseServer(t, rel, devKey(t), b, older)
	rs.cut = 100 << 10
	old := retryBackoff
	retryBackoff = 10 * time.Millisecond
	t.Cleanup(func() { retryBackoff = old })
	u := testUpdater(t, "1.0-1")
	u.Poke() // SetSettings pokes; drain below
	if err := u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: -1}); err != nil {
		t.Fatal(err)
	}
	if err := u.checkFeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, ok, err := u.sys.State.TakeRequest()
	if err != nil || !ok {
		t.Fatalf("no installation requested: %v", err)
	}
	if req.Source != "feed" || req.AllowOlder {
		t.Errorf("request %+v", req)
	}
	p, err := u.sys.State.SpoolFile(req.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want, _ := os.ReadFile(b)
	if !bytes.Equal(got, want) {
		t.Fatal("the spooled bundle differs from the release")
	}
	rs.mu.Lock()
	ranges := rs.ranges
	rs.mu.Unlock()
	// The first request was cut at 100 KiB; the second resumed there.
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Errorf("bundle requests' Range headers %q: want a fresh one, then a resume", ranges)
	}
	if r := u.Report(); r.Available != "1.1-1" || r.Feed == "" {
		t.Errorf("report %+v", r)
	}
}

func TestFeedNothingNewer(t *testing.T) {
	rel := t.TempDir()
	rs := newReleaseServer(t, rel, devKey(t), makeBundleFile(t, rel, "1.0-1", devKey(t)))
	u := testUpdater(t, "1.0-1")
	u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json"})
	if err := u.checkFeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.sys.State.TakeRequest(); ok || rs.hits.Load() != 0 {
		t.Fatalf("the running version was fetched (%d requests) or requested", rs.hits.Load())
	}
}

// TestRefusedBundles: a feed (signed by a trusted key) that lists a
// bundle signed by another key gets it downloaded but refused: no
// installation is asked for, the file is deleted, the state says why. A
// feed signed by another key is refused before anything is fetched.
func TestRefusedBundles(t *testing.T) {
	_, other, _ := ed25519.GenerateKey(nil)
	rel := t.TempDir()
	b := makeBundleFile(t, rel, "1.1-1", other)
	otherPEM, _ := x509PEM(other)
	os.WriteFile(b+".signer", otherPEM, 0o600)
	rs := newReleaseServer(t, rel, devKey(t), b)
	u := testUpdater(t, "1.0-1")
	u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: -1})
	err := u.checkFeed(context.Background())
	if !errors.Is(err, bundle.ErrUntrustedKey) {
		t.Fatalf("checkFeed = %v, want ErrUntrustedKey", err)
	}
	if _, ok, _ := u.sys.State.TakeRequest(); ok {
		t.Fatal("a bundle signed by another key was sent to the installer")
	}
	if ents, _ := os.ReadDir(u.sys.State.Spool()); len(ents) != 0 {
		t.Errorf("spool not emptied: %v", ents)
	}
	if r := u.Report(); r.State != "refused" || !strings.Contains(r.Detail, "trusted") {
		t.Errorf("report %+v", r)
	}

	rs2 := newReleaseServer(t, rel, other, b)
	u2 := testUpdater(t, "1.0-1")
	u2.SetSettings(owner.UpdateSettings{Feed: rs2.URL + "/feed.json"})
	if err := u2.checkFeed(context.Background()); !errors.Is(err, bundle.ErrUntrustedKey) || rs2.hits.Load() != 0 {
		t.Fatalf("feed by another key: %v, %d bundle requests", err, rs2.hits.Load())
	}
}

// TestBusyWaits: while the node is busy syncing nothing is fetched.
func TestBusyWaits(t *testing.T) {
	old := busyRecheck
	busyRecheck = 10 * time.Millisecond
	t.Cleanup(func() { busyRecheck = old })
	rel := t.TempDir()
	rs := newReleaseServer(t, rel, devKey(t), makeBundleFile(t, rel, "1.1-1", devKey(t)))
	u := testUpdater(t, "1.0-1")
	u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: -1})
	var asked atomic.Int32
	u.busy = func() bool {
		if n := asked.Add(1); n <= 5 {
			if rs.hits.Load() != 0 {
				t.Errorf("a bundle was fetched while the node was busy")
			}
			return true
		}
		return false
	}
	if err := u.checkFeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	if asked.Load() <= 5 {
		t.Fatalf("busy asked %d times", asked.Load())
	}
	if _, ok, _ := u.sys.State.TakeRequest(); !ok {
		t.Fatal("nothing requested once the node was no longer busy")
	}
}

// TestAnnounce: the outcome of an update is told once; a failed attempt
// to tell is tried again.
func TestAnnounce(t *testing.T) {
	u := testUpdater(t, "1.1-1")
	res := update.Result{ID: "abc", Outcome: update.Failed, Version: "1.1-1", From: "1.0-1", Running: "1.0-1", Tries: 1, At: time.Now()}
	if err := u.sys.State.WriteRecord(update.Record{Last: &res}); err != nil {
		t.Fatal(err)
	}
	var told []string
	fail := true
	u.report = func(ctx context.Context, r update.Result) error {
		if fail {
			fail = false
			return errors.New("no peers")
		}
		told = append(told, r.Message())
		return nil
	}
	for range 3 {
		u.announce(context.Background())
	}
	if len(told) != 1 || !strings.HasPrefix(told[0], "update to 1.1-1 failed after 1 try, back on 1.0-1") {
		t.Fatalf("told %q, want the failure once", told)
	}
}

// TestUploadResumes: a bundle from the phone that stops half way resumes
// from there and, complete and checked, is sent to the installer.
func TestUploadResumes(t *testing.T) {
	rel := t.TempDir()
	b := makeBundleFile(t, rel, "1.1-1", devKey(t))
	raw, _ := os.ReadFile(b)
	sum := sha256.Sum256(raw)
	u := testUpdater(t, "1.0-1")
	h := owner.UploadHeader{Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]), Apply: true}
	up, err := u.receive(h)
	if err != nil {
		t.Fatal(err)
	}
	if up.Offset() != 0 {
		t.Fatalf("fresh upload at %d", up.Offset())
	}
	up.Write(raw[:len(raw)/3])
	up.Abort()
	up, err = u.receive(h)
	if err != nil {
		t.Fatal(err)
	}
	if up.Offset() != int64(len(raw)/3) {
		t.Fatalf("resumed at %d, want %d", up.Offset(), len(raw)/3)
	}
	up.Write(raw[up.Offset():])
	name, err := up.Done(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, ok, _ := u.sys.State.TakeRequest()
	if !ok || req.Bundle != name || req.Source != "phone" {
		t.Fatalf("request %+v %v (name %s)", req, ok, name)
	}

	// A damaged upload is refused and deleted.
	bad := bytes.Clone(raw)
	bad[len(bad)-1] ^= 1
	up, _ = u.receive(owner.UploadHeader{Size: int64(len(bad)), SHA256: strings.Repeat("0", 64), Apply: true})
	up.Write(bad)
	if _, err := up.Done(context.Background()); !errors.Is(err, owner.ErrUpdateRefused) {
		t.Fatalf("damaged upload: %v", err)
	}
}

func TestSettingsChecked(t *testing.T) {
	u := testUpdater(t, "1.0-1")
	for _, s := range []owner.UpdateSettings{{Feed: "ftp://x/feed"}, {Feed: "not a url"}, {Interval: "10s"}, {Interval: "soon"}, {Rate: -5}} {
		if err := u.SetSettings(s); err == nil {
			t.Errorf("settings %+v accepted", s)
		}
	}
	if err := u.SetSettings(owner.UpdateSettings{Feed: "https://example.invalid/feed.json", Interval: "6h", Rate: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	// Kept in the store: a new updater on the same store reads them.
	u2 := newUpdater(u.sys, u.meta, u.log)
	if s := u2.Settings(); s.Feed != "https://example.invalid/feed.json" || settingsInterval(s) != 6*time.Hour {
		t.Errorf("settings after a restart: %+v", s)
	}
	if l := u2.limiter(); l == nil || l.Limit() != 1<<20 {
		t.Errorf("limiter %v", l)
	}
}

// TestFailedReleaseNotRetried: a release whose trial failed on this box is
// not fetched again from the feed by itself.
func TestFailedReleaseNotRetried(t *testing.T) {
	rel := t.TempDir()
	rs := newReleaseServer(t, rel, devKey(t), makeBundleFile(t, rel, "1.1-1", devKey(t)))
	u := testUpdater(t, "1.0-1")
	res := update.Result{ID: "x", Outcome: update.Failed, Version: "1.1-1", From: "1.0-1", Running: "1.0-1", Tries: 1, At: time.Now()}
	u.sys.State.WriteRecord(update.Record{Last: &res})
	u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: -1})
	if err := u.checkFeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.sys.State.TakeRequest(); ok || rs.hits.Load() != 0 {
		t.Fatalf("a release that failed here was fetched again (%d requests)", rs.hits.Load())
	}
	if r := u.Report(); r.Available != "1.1-1" {
		t.Errorf("report %+v: the release is still shown as available", r)
	}
}

// TestReportCommitFailed: a commit step that failed on a boot that was not
// a trial (the board stayed up) shows in the status report with its reason
// until a commit succeeds.
func TestReportCommitFailed(t *testing.T) {
	u := testUpdater(t, "1.0-1")
	if r := u.Report(); r.State != "idle" {
		t.Fatalf("state %q before any failure", r.State)
	}
	if err := u.sys.State.RecordCommitFailure("the boot disk: permission denied"); err != nil {
		t.Fatal(err)
	}
	r := u.Report()
	if r.State != "not committed" || r.Version != "1.0-1" || r.Detail != "the boot disk: permission denied" {
		t.Fatalf("report %+v", r)
	}
	if l := r.Line(); !strings.Contains(l, "not committed at boot") {
		t.Errorf("line %q", l)
	}
	rec, _ := u.sys.State.ReadRecord()
	rec.CommitFailed = nil
	if err := u.sys.State.WriteRecord(rec); err != nil {
		t.Fatal(err)
	}
	if r := u.Report(); r.State != "idle" {
		t.Errorf("state %q after the failure was cleared", r.State)
	}
}

// TestDownloadRateCapped: a download from the feed is held to the owner's
// rate. The limiter lets a burst of one second's worth through at once,
// so N bytes at R bytes a second take at least (N-R)/R seconds; on
// loopback the same download takes milliseconds without the cap. (A
// lower bound only: a slow machine makes it longer, never shorter.)
func TestDownloadRateCapped(t *testing.T) {
	rel := t.TempDir()
	b := makeBundleFile(t, rel, "1.1-1", devKey(t))
	size, err := fileSize(b)
	if err != nil {
		t.Fatal(err)
	}
	const r = 200_000 // bytes per second
	rs := newReleaseServer(t, rel, devKey(t), b)
	u := testUpdater(t, "1.0-1")
	if err := u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: r}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := u.checkFeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if _, ok, _ := u.sys.State.TakeRequest(); !ok {
		t.Fatal("nothing requested")
	}
	// 1 % off for the limiter's float arithmetic.
	least := time.Duration(float64(size-r) / r * 0.99 * float64(time.Second))
	if took < least {
		t.Fatalf("%d bytes at a cap of %d B/s took %s; the cap allows no less than %s", size, r, took, least)
	}
	t.Logf("%d bytes at a cap of %d B/s: %s (at least %s)", size, r, took.Round(time.Millisecond), least.Round(time.Millisecond))

	// No rate set is the default cap; -1 is none.
	for _, c := range []struct {
		rate int64
		want float64
	}{{0, DefaultUpdateRate}, {-1, -1}} {
		if err := u.SetSettings(owner.UpdateSettings{Rate: c.rate}); err != nil {
			t.Fatal(err)
		}
		got := -1.0 // no limiter
		if l := u.limiter(); l != nil {
			got = float64(l.Limit())
		}
		if got != c.want {
			t.Errorf("rate %d: limiter at %v B/s, want %v (-1: none)", c.rate, got, c.want)
		}
	}
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
