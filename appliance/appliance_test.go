package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// copyTree copies a fixture tree so the test may write to it (the LED).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestBoardLEDPairingAndButtonReset runs the whole appliance in process on
// a Raspberry Pi 4 fixture tree: the activity LED blinks while it waits
// for pairing, a phone pairs with the real protocol, and holding the
// board's button resets the node to waiting with a new token.
func TestBoardLEDPairingAndButtonReset(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "../board/testdata/pi4b", root)
	info, err := board.Detect(root)
	if err != nil || info.LEDPath == "" || info.ButtonDevice == "" {
		t.Fatalf("fixture: %+v, %v", info, err)
	}
	if err := os.MkdirAll(filepath.Dir(info.ButtonDevice), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(info.ButtonDevice, 0o600); err != nil {
		t.Fatal(err)
	}

	app, stop := startInProcess(t, func(c *Config) { c.BoardRoot = root; c.Relay = true },
		func(o *Options) { o.ButtonHold = 300 * time.Millisecond })
	ctx := context.Background()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(info.LEDPath, name))
		return strings.TrimSpace(string(b))
	}
	seen := map[string]bool{}
	eventually(t, "the LED blinking while waiting for pairing", 10*time.Second, func() bool {
		seen[read("brightness")] = true
		return seen["0"] && seen["1"]
	})
	if read("trigger") != "none" {
		t.Fatalf("LED trigger %q while blinking, want none", read("trigger"))
	}

	report := func() status.Report {
		r, err := app.Report(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := report()
	if r.Pairing.State != status.PairingWaiting || r.Board == "" || r.CPUTempCelsius == nil {
		t.Fatalf("report before pairing: %+v", r)
	}
	firstURI := r.Pairing.URI

	phone, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	_, owner, _ := ed25519.GenerateKey(rand.Reader)
	if err := provisioning.Pair(ctx, phone, firstURI, owner); err != nil {
		t.Fatalf("pairing: %v", err)
	}
	if r := report(); r.Pairing.State != status.PairingOwned || r.Pairing.URI != "" {
		t.Fatalf("report after pairing: %+v", r.Pairing)
	}
	// The paired owner registers at hop 0 and the node serves its channel.
	ownerID, err := channel.IdentityFromSeed(owner.Seed())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := channel.NewKey(rand.Reader)
	res, err := routing.Register(ctx, phone, app.node.Host.ID(), ownerID, nil, []channel.ID{key.ID()})
	if err != nil || res.Hop != 0 {
		t.Fatalf("owner registration: %+v, %v", res, err)
	}
	if r := report(); r.Users.ByHop[0] != 1 || !app.node.Sync.Wants(key.ID()) {
		t.Fatalf("after the owner registered: users %+v, serving its channel: %v", r.Users, app.node.Sync.Wants(key.ID()))
	}

	// Hold the button: press, wait past the hold time, release.
	f, err := os.OpenFile(info.ButtonDevice, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const keyCode = 0x100
	f.Write(board.AppendInputEvent(nil, 0, time.Now(), board.EvKey, keyCode, 1))
	eventually(t, "the factory reset from the button", 10*time.Second, func() bool {
		return app.prov.State() == provisioning.StateWaiting
	})
	f.Write(board.AppendInputEvent(nil, 0, time.Now(), board.EvKey, keyCode, 0))
	r = report()
	if r.Pairing.URI == "" || r.Pairing.URI == firstURI {
		t.Fatalf("after the reset: URI %q (before %q)", r.Pairing.URI, firstURI)
	}
	if r.Users.Total() != 0 || app.node.Sync.Wants(key.ID()) {
		t.Fatalf("after the reset the old owner is still served: %+v", r.Users)
	}
	if _, err := routing.Register(ctx, phone, app.node.Host.ID(), ownerID, nil, []channel.ID{key.ID()}); err == nil {
		t.Fatal("the old owner registered after the reset")
	}
	if err := provisioning.Pair(ctx, phone, firstURI, owner); err == nil {
		t.Fatal("the old token paired after the reset")
	}

	stop()
	if got := read("trigger"); got == "none" {
		t.Errorf("LED not given back to its kernel trigger after stop")
	}
}

// startInProcess runs the appliance in this process on loopback and
// returns it once ready, and a stop function (also run at cleanup).
func startInProcess(t *testing.T, edit func(*Config), editOpts ...func(*Options)) (*Appliance, func()) {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.HTTP = "off"
	cfg.UPnP = false
	cfg.Relay = false
	cfg.BoardRoot = t.TempDir()
	cfg.AdminSocket = filepath.Join(cfg.DataDir, "admin.sock")
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var app *Appliance
	ready := make(chan struct{})
	errc := make(chan error, 1)
	o := Options{
		Config:   cfg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Started:  func(string, []string) { close(ready) },
		testHook: func(a *Appliance) { app = a },
	}
	for _, e := range editOpts {
		e(&o)
	}
	go func() { errc <- Run(ctx, o) }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return app, stop
}

// TestBranchAndPrune: the owner sees through which trust chain a flooding
// channel came in and cuts that branch in one step; other friends stay.
func TestBranchAndPrune(t *testing.T) {
	owner, _ := channel.NewIdentity(rand.Reader)
	a, _ := channel.NewIdentity(rand.Reader)
	b, _ := channel.NewIdentity(rand.Reader)
	c, _ := channel.NewIdentity(rand.Reader)
	app, _ := startInProcess(t, func(cfg *Config) { cfg.Owner = owner.Public().String() })
	ctx := context.Background()
	end := time.Now().Add(24 * time.Hour)
	issue := func(from *channel.Identity, to channel.IdentityKey, hop int) *routing.Ticket {
		tk, err := routing.IssueTicket(from, to, hop, end)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	flood, _ := channel.NewKey(rand.Reader)
	calm, _ := channel.NewKey(rand.Reader)
	chainA := routing.Chain{issue(owner, a.Public(), 1)}
	chainB := append(append(routing.Chain{}, chainA...), issue(a, b.Public(), 2))
	chainC := routing.Chain{issue(owner, c.Public(), 1)}
	for _, r := range []struct {
		id    *channel.Identity
		chain routing.Chain
		ch    channel.ID
	}{{a, chainA, flood.ID()}, {b, chainB, flood.ID()}, {c, chainC, calm.ID()}} {
		h, err := libp2p.New(libp2p.NoListenAddrs)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		h.Connect(ctx, peer.AddrInfo{ID: app.node.Host.ID(), Addrs: app.node.Host.Addrs()})
		if _, err := routing.Register(ctx, h, app.node.Host.ID(), r.id, r.chain, []channel.ID{r.ch}); err != nil {
			t.Fatal(err)
		}
	}
	users, err := app.Branch(ctx, flood.ID().String())
	if err != nil || len(users) != 2 {
		t.Fatalf("branch: %+v, %v", users, err)
	}
	for _, u := range users {
		if u.Identity == b.Public().String() && (len(u.Chain) != 2 || u.Chain[1] != a.Public().String()) {
			t.Fatalf("B's chain %v, want owner → A", u.Chain)
		}
	}
	revoked, err := app.Prune(ctx, flood.ID().String())
	if err != nil || len(revoked) != 2 {
		t.Fatalf("prune: %v, %v", revoked, err)
	}
	left, _ := app.Users(ctx)
	if len(left) != 1 || left[0].Identity != c.Public().String() {
		t.Fatalf("after prune: %+v, want only C", left)
	}
	if !app.node.Sync.Wants(calm.ID()) || app.node.Sync.Wants(flood.ID()) {
		t.Fatal("after prune the node should serve the calm channel and not the flooding one")
	}
	if _, err := app.Prune(ctx, flood.ID().String()); err == nil {
		t.Fatal("pruning an empty branch reported nothing to do as success")
	}
}

// TestFollowOwnerChannelSurvivesRestart: the paired owner hands its node
// channel's read-only key over the owner protocol; the node serves that
// channel and the channels listed in it, refuses a full key and a
// stranger, still serves them after a restart (from what is stored), and
// stops after a factory reset.
func TestFollowOwnerChannelSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	edit := func(c *Config) { c.DataDir = dataDir; c.AdminSocket = filepath.Join(dataDir, "admin.sock") }
	app, stop := startInProcess(t, edit)
	ctx := context.Background()
	phone, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	_, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	r, _ := app.Report(ctx)
	if err := provisioning.Pair(ctx, phone, r.Pairing.URI, ownerKey); err != nil {
		t.Fatal(err)
	}
	nodeCh, _ := channel.NewKey(rand.Reader)
	if err := owner.Follow(ctx, phone, app.node.Host.ID(), ownerKey, nodeCh.String()); err == nil {
		t.Fatal("the node accepted a full key (it must only ever read the owner's node channel)")
	}
	ro, _ := nodeCh.ReadOnly()
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	if err := owner.Follow(ctx, phone, app.node.Host.ID(), stranger, ro.String()); !errors.Is(err, owner.ErrNotOwner) {
		t.Fatalf("a stranger's follow: %v", err)
	}
	if err := owner.Follow(ctx, phone, app.node.Host.ID(), ownerKey, ro.String()); err != nil {
		t.Fatal(err)
	}
	if !app.node.Sync.Wants(nodeCh.ID()) {
		t.Fatal("the node does not serve the owner's node channel")
	}
	// A device lists a channel in the node channel (docs/DEVICES.md).
	listed, _ := channel.NewKey(rand.Reader)
	device, _ := channel.NewIdentity(rand.Reader)
	body := append([]byte{'S'}, []byte(`{"channels":["`+listed.ID().String()+`"]}`)...)
	env, err := nodeCh.Seal(device, channel.KindControl, body, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.node.Sync.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listed channel served", 10*time.Second, func() bool { return app.node.Sync.Wants(listed.ID()) })

	stop()
	app2, _ := startInProcess(t, edit)
	if !app2.node.Sync.Wants(nodeCh.ID()) || !app2.node.Sync.Wants(listed.ID()) {
		t.Fatal("after a restart the node no longer serves the owner's channels")
	}
	if err := app2.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if app2.node.Sync.Wants(nodeCh.ID()) || app2.node.Sync.Wants(listed.ID()) {
		t.Fatal("after a factory reset the node still serves the old owner's channels")
	}
}

// logSink collects a running appliance's log for inspection.
type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestPairedRegistrationsSurviveRestart: a node paired through the pairing
// protocol (no owner in its configuration) serves its owner and the
// owner's friends at hops 1 and 2 after a restart, as before it, and drops
// none of them: the registry loads knowing the paired owner, so it need
// not even hold them until pairing starts.
func TestPairedRegistrationsSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	var logs logSink
	edit := func(c *Config) { c.DataDir = dataDir; c.AdminSocket = filepath.Join(dataDir, "admin.sock") }
	withLog := func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }
	app, stop := startInProcess(t, edit, withLog)
	ctx := context.Background()
	ownerID, _ := channel.NewIdentity(rand.Reader)
	f1, _ := channel.NewIdentity(rand.Reader)
	f2, _ := channel.NewIdentity(rand.Reader)
	phone, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	r, _ := app.Report(ctx)
	if err := provisioning.Pair(ctx, phone, r.Pairing.URI, ed25519.NewKeyFromSeed(ownerID.Seed())); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(24 * time.Hour)
	t1, err := routing.IssueTicket(ownerID, f1.Public(), 1, end)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := routing.IssueTicket(f1, f2.Public(), 2, end)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := channel.NewKey(rand.Reader)
	for _, u := range []struct {
		id    *channel.Identity
		chain routing.Chain
	}{{ownerID, nil}, {f1, routing.Chain{t1}}, {f2, routing.Chain{t1, t2}}} {
		h, err := libp2p.New(libp2p.NoListenAddrs)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Connect(ctx, peer.AddrInfo{ID: app.node.Host.ID(), Addrs: app.node.Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
		if _, err := routing.Register(ctx, h, app.node.Host.ID(), u.id, u.chain, []channel.ID{ch.ID()}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := app.Users(ctx)
	if len(before) != 3 {
		t.Fatalf("before the restart: %+v", before)
	}
	stop()

	app2, _ := startInProcess(t, edit, withLog)
	after, _ := app2.Users(ctx)
	if len(after) != 3 {
		t.Fatalf("after the restart the node serves %+v, want the owner and two friends", after)
	}
	for i := range before {
		if after[i].Identity != before[i].Identity || after[i].Hop != before[i].Hop || after[i].Sponsor != before[i].Sponsor {
			t.Fatalf("user %d changed across the restart: %+v, was %+v", i, after[i], before[i])
		}
	}
	if !app2.node.Sync.Wants(ch.ID()) {
		t.Fatal("after the restart the node does not serve its users' channel")
	}
	if strings.Contains(logs.String(), "registration dropped") {
		t.Fatalf("a registration was dropped across the restart:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "until the node's owner is known") {
		t.Fatalf("the registry loaded without knowing the paired owner:\n%s", logs.String())
	}
}

// TestNoButtonLogged: a board whose button never shows up (here a Pi 4
// tree with no gpio-keys input device) gets one log line saying what was
// searched, once the search is over, instead of silence.
func TestNoButtonLogged(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "../board/testdata/pi4b", root)
	devices := filepath.Join(root, "proc/bus/input/devices")
	if err := os.WriteFile(devices, []byte("I: Bus=0003 Vendor=046d Product=c31c Version=0110\nN: Name=\"USB Keyboard\"\nP: Phys=usb-0000:01:00.0-1.3/input0\nH: Handlers=sysrq kbd event0\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	startInProcess(t, func(c *Config) { c.BoardRoot = root },
		func(o *Options) {
			o.ButtonSearch = 300 * time.Millisecond
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
	testkit.Eventually(t, "the log line saying no button was found", func() bool {
		return strings.Contains(logs.String(), "no reset button found")
	})
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "no reset button found") {
			line = l
		}
	}
	if !strings.Contains(line, devices) || !strings.Contains(line, "gpio-keys") || strings.Contains(logs.String(), "reset button ready") {
		t.Fatalf("log line %q; all:\n%s", line, logs.String())
	}
}
