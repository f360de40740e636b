package appliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bundle"
	"github.com/redpanda-p2p/homenode/update/cardtest"
)

// The whole path of an update inside one box, on files standing in for
// the card (as the update package's own tests do): the owner's command or
// the feed, the daemon's download and checks, its request to the
// installer, the installer writing slot B and arming the trial boot, and
// what the owner sees on the way.

const testSlotSize = 1 << 20

// fileCard is an A/B system on files (update/cardtest): a boot disk holding the boot state
// (freshly flashed: "A B", three boots for A, none for B), slot A full of
// the running system, slot B empty, and the update state directory.
func fileCard(t *testing.T, version string) *update.System {
	t.Helper()
	boot := update.Boot{Order: []update.Slot{update.SlotA, update.SlotB}, Left: map[update.Slot]int{update.SlotA: 3, update.SlotB: 0}}
	card := cardtest.New(t, boot, testSlotSize, 'A', 0)
	return card.System(version, bundle.NewKeyring(devKey(t).Public().(ed25519.PublicKey)), update.Dir(filepath.Join(card.Dir, "update")))
}

// cardUpdater runs the updater of the in-process node app on card, as
// startUpdater does on the image.
func cardUpdater(t *testing.T, app *Appliance, card *update.System) *updater {
	u := newUpdater(card, app.node.Store.Meta(updateBucket), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	app.upd.Store(u)
	return u
}

// takeRequest waits for the node to ask the installer for an
// installation and takes the request, as homenode-update.service does.
func takeRequest(t *testing.T, card *update.System) update.Request {
	t.Helper()
	var req update.Request
	testkit.Eventually(t, "the node asks the installer for an installation", func() bool {
		r, ok, err := card.State.TakeRequest()
		if err != nil {
			t.Fatal(err)
		}
		req = r
		return ok
	})
	return req
}

// install plays homenode-update.service (homenode update
// install-request): it installs the spooled bundle req names. progress,
// when set, sees the installation advance.
func install(card *update.System, req update.Request, progress func(update.Progress)) (update.Installed, error) {
	path, err := card.State.SpoolFile(req.Bundle)
	if err != nil {
		return update.Installed{}, err
	}
	return card.Install(path, update.InstallOptions{AllowOlder: req.AllowOlder, AllowSame: req.AllowSame,
		Tries: req.Tries, Source: req.Source, Progress: progress})
}

// installRequested takes the node's request and installs it.
func installRequested(t *testing.T, card *update.System) (update.Request, update.Installed) {
	t.Helper()
	req := takeRequest(t, card)
	inst, err := install(card, req, nil)
	if err != nil {
		t.Fatalf("installing what the node asked for: %v", err)
	}
	return req, inst
}

// checkTrialArmed: slot B holds the image of version v, and the next boot
// tries it once.
func checkTrialArmed(t *testing.T, card *update.System, v string) {
	t.Helper()
	got, err := os.ReadFile(card.Slots[update.SlotB])
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(v)
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatalf("slot B does not hold the image of %s", v)
	}
	b, _, err := card.LoadBoot()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Order, []update.Slot{update.SlotB, update.SlotA}) || b.Left[update.SlotB] != 1 || b.Trial != update.SlotB {
		t.Fatalf("boot state %s, want B then A, one try of B, B on trial", b)
	}
}

// pairedPhone is the owner's phone, paired with app.
func pairedPhone(t *testing.T, app *Appliance) (host.Host, ed25519.PrivateKey, peer.ID) {
	t.Helper()
	phone, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	_, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	r, err := app.Report(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := provisioning.Pair(context.Background(), phone, r.Pairing.URI, ownerKey); err != nil {
		t.Fatal(err)
	}
	return phone, ownerKey, app.node.Host.ID()
}

// TestApplyCommandFromPhone: the phone sends only the command (owner
// protocol "update-apply", with a version of the feed or a URL); the node
// fetches the bundle itself from the release server, checks it and asks
// for its installation; the installer writes slot B and arms the trial;
// the phone then sees "rebooting" into that version. A stranger's command
// is refused, and one the node cannot carry out says why in the state.
func TestApplyCommandFromPhone(t *testing.T) {
	app, _ := startInProcess(t, nil)
	ctx := context.Background()
	phone, ownerKey, node := pairedPhone(t, app)
	rel := t.TempDir()
	b := makeBundleFile(t, rel, "1.1-1", devKey(t))
	rs := newReleaseServer(t, rel, devKey(t), b)

	t.Run("version of the feed", func(t *testing.T) {
		card := fileCard(t, "1.0-1")
		u := cardUpdater(t, app, card)
		_, stranger, _ := ed25519.GenerateKey(rand.Reader)
		if err := owner.ApplyUpdate(ctx, phone, node, stranger, owner.UpdateApply{Version: "1.1-1"}); !errors.Is(err, owner.ErrNotOwner) {
			t.Fatalf("a stranger's update-apply: %v, want ErrNotOwner", err)
		}
		if err := owner.ApplyUpdate(ctx, phone, node, ownerKey, owner.UpdateApply{Version: "1.1-1"}); err == nil || !strings.Contains(err.Error(), "no release feed") {
			t.Fatalf("update-apply of a version with no feed set: %v, want \"no release feed\"", err)
		}
		// Manual: the node only tells of new releases; what follows is
		// the owner's command, not the schedule.
		if err := owner.ConfigureUpdates(ctx, phone, node, ownerKey, owner.UpdateSettings{Feed: rs.URL + "/feed.json", Manual: true, Rate: -1}); err != nil {
			t.Fatal(err)
		}
		if err := owner.ApplyUpdate(ctx, phone, node, ownerKey, owner.UpdateApply{Version: "7.0-1"}); err != nil {
			t.Fatal(err)
		}
		var st owner.UpdateState
		testkit.Eventually(t, "the node says it has no 7.0-1", func() bool {
			var err error
			st, err = owner.GetUpdateState(ctx, phone, node, ownerKey)
			return err == nil && st.Update.State == "failed"
		})
		if !strings.Contains(st.Update.Detail, `no release "7.0-1"`) {
			t.Fatalf("update state %+v, want why 7.0-1 failed", st.Update)
		}
		if rs.hits.Load() != 0 {
			t.Fatalf("%d bundle requests for a version the feed does not list", rs.hits.Load())
		}

		if err := owner.ApplyUpdate(ctx, phone, node, ownerKey, owner.UpdateApply{Version: "1.1-1"}); err != nil {
			t.Fatal(err)
		}
		req, inst := installRequested(t, card)
		if req.Source != "feed" || inst.Manifest.Version != "1.1-1" || inst.Slot != update.SlotB {
			t.Fatalf("request %+v, installed %+v", req, inst)
		}
		checkTrialArmed(t, card, "1.1-1")
		if n := rs.hits.Load(); n != 1 {
			t.Errorf("the bundle was requested %d times, want once", n)
		}
		testkit.Eventually(t, "the node's updater is done", func() bool { return !u.busyNow() })
		st, err := owner.GetUpdateState(ctx, phone, node, ownerKey)
		if err != nil || st.Update.State != "rebooting" || st.Update.Version != "1.1-1" {
			t.Fatalf("the phone sees %+v, %v; want rebooting into 1.1-1", st.Update, err)
		}
	})

	t.Run("URL", func(t *testing.T) {
		card := fileCard(t, "1.0-1")
		u := cardUpdater(t, app, card)
		// No feed at all: the URL is all the node needs.
		if err := owner.ConfigureUpdates(ctx, phone, node, ownerKey, owner.UpdateSettings{}); err != nil {
			t.Fatal(err)
		}
		before := rs.hits.Load()
		if err := owner.ApplyUpdate(ctx, phone, node, ownerKey, owner.UpdateApply{URL: rs.URL + "/" + filepath.Base(b)}); err != nil {
			t.Fatal(err)
		}
		req, inst := installRequested(t, card)
		if req.Source != "url" || inst.Manifest.Version != "1.1-1" {
			t.Fatalf("request %+v, installed %+v", req, inst)
		}
		checkTrialArmed(t, card, "1.1-1")
		if n := rs.hits.Load() - before; n != 1 {
			t.Errorf("the bundle was requested %d times, want once", n)
		}
		testkit.Eventually(t, "the node's updater is done", func() bool { return !u.busyNow() })
	})
}

// busyNow reports whether an Apply is running (for tests to let it end).
func (u *updater) busyNow() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.working
}

// notifySocket is systemd's end of sd_notify: a unix datagram socket
// that NOTIFY_SOCKET names, for the daemon in this process.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	conn, path := testkit.NotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// statusSent reads what the daemon sent systemd until a STATUS= line
// containing want; it fails after a minute without one.
func statusSent(t *testing.T, conn *net.UnixConn, want string) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 4096)
	var seen []string
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no STATUS= with %q sent to systemd (%v); sent: %q", want, err, seen)
		}
		m := string(buf[:n])
		seen = append(seen, m)
		if strings.HasPrefix(m, "STATUS=") && strings.Contains(m, want) {
			return m
		}
	}
}

// TestUpdateProgressShown: while an update is downloaded, and while the
// installer writes it, the owner sees how far it got in STATUS= (systemd's
// status line, through a real NOTIFY_SOCKET), in `homenode status` (the
// admin socket, rendered as the command does) and on the status page.
func TestUpdateProgressShown(t *testing.T) {
	notify := notifySocket(t)
	port := testkit.FreePort(t)
	app, _ := startInProcess(t, func(c *Config) { c.HTTP = fmt.Sprintf("127.0.0.1:%d", port) })
	ctx := context.Background()
	card := fileCard(t, "1.0-1")
	u := cardUpdater(t, app, card)
	rel := t.TempDir()
	rs := newReleaseServer(t, rel, devKey(t), makeBundleFile(t, rel, "1.1-1", devKey(t)))
	rs.hold = make(chan struct{})
	release := sync.OnceFunc(func() { close(rs.hold) })
	defer release() // a failed test lets the server end its request
	if err := u.SetSettings(owner.UpdateSettings{Feed: rs.URL + "/feed.json", Rate: -1}); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { applied <- u.Apply(actx, owner.UpdateApply{Version: "1.1-1"}) }()

	// shown checks the three places for want.
	shown := func(want string) {
		t.Helper()
		app.pushStatus(ctx) // what the status loop does every 10 s
		line := statusSent(t, notify, want)
		t.Logf("sent to systemd: %s", line)
		c, err := admin.Dial(ctx, app.cfg.AdminSocket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := status.Render(&out, r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("homenode status does not say %q:\n%s", want, out.String())
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), `<span id="update-now">`+want+`</span>`) {
			t.Errorf("the status page does not say %q:\n%s", want, page)
		}
	}

	// Half the bundle is in; the server holds the rest.
	testkit.Eventually(t, "the download is half way", func() bool {
		r := u.Report()
		return r.State == "downloading" && r.Percent >= 49
	})
	shown(fmt.Sprintf("update downloading 1.1-1 %d%%", u.Report().Percent))
	release()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}

	// The installer (another process on the box) records its progress
	// in the update directory; the daemon shows it. Hold the installer
	// when it has written the slot and starts reading it back.
	req := takeRequest(t, card)
	paused, resume := make(chan struct{}), make(chan struct{})
	installed := make(chan error, 1)
	go func() {
		held := false
		_, err := install(card, req, func(p update.Progress) {
			if p.Phase == update.PhaseChecking && !held {
				held = true
				close(paused)
				<-resume
			}
		})
		installed <- err
	}()
	select {
	case <-paused:
	case err := <-installed:
		t.Fatalf("the installation ended before it read the slot back: %v", err)
	}
	resumeOnce := sync.OnceFunc(func() { close(resume) })
	defer func() { resumeOnce(); <-installed }()
	shown("update writing 1.1-1")
	resumeOnce()
	if err := <-installed; err != nil {
		t.Fatal(err)
	}
	installed <- nil // for the deferred wait
	checkTrialArmed(t, card, "1.1-1")
	shown("update rebooting 1.1-1")
}
