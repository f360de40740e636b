package appliance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/redpanda-p2p/homenode/appliance/status"
	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/provisioning"
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

	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.HTTP = "off"
	cfg.UPnP = false
	cfg.BoardRoot = root
	cfg.AdminSocket = filepath.Join(cfg.DataDir, "admin.sock")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var app *Appliance
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Config:     cfg,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			ButtonHold: 300 * time.Millisecond,
			Started:    func(string, []string) { close(ready) },
			testHook:   func(a *Appliance) { app = a },
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
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

	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if got := read("trigger"); got == "none" {
		t.Errorf("LED not given back to its kernel trigger after stop")
	}
}
