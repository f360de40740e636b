package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance"
	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bundle"
	"github.com/redpanda-p2p/homenode/update/cardtest"
)

// commitCard is an A/B card of files (update/cardtest)
// on which slot A runs and the data directory holds a message store with
// a rollback copy beside it: the box right after the boot script gave up
// a trial of B and started A again. It returns the commit step's
// environment, with a node whose health the test decides, and the paths
// of the rollback copy and of the file a rollback moved aside.
func commitCard(t *testing.T, healthy func(context.Context) error) (appliance.Config, commitEnv, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := appliance.Defaults()
	cfg.DataDir = filepath.Join(dir, "data")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil { // the node's, made by StateDirectory=
		t.Fatal(err)
	}
	// B was on trial, had its one boot and was not committed: the
	// script started A (one of its boots taken).
	boot := update.Boot{Order: []update.Slot{update.SlotB, update.SlotA},
		Left: map[update.Slot]int{update.SlotA: 2, update.SlotB: 0}, Trial: update.SlotB}
	card := cardtest.New(t, boot, 4096, 'A', 'B')
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sys := card.System("1.0-1", bundle.NewKeyring(pub), stateDir(cfg))
	if err := sys.State.WriteRecord(update.Record{
		Trial: &update.Trial{Slot: update.SlotB, Version: "1.1-1", From: "1.0-1", Tries: 1, Installed: time.Now().UTC()},
		Slots: map[update.Slot]string{update.SlotA: "1.0-1", update.SlotB: "1.1-1"},
	}); err != nil {
		t.Fatal(err)
	}
	// The store, the copy 1.1-1's migration kept (node/store names it
	// PATH.rollback-vN), and the file a rollback moves aside.
	storePath := filepath.Join(cfg.DataDir, node.StoreFile)
	snap := storePath + ".rollback-v3"
	aside := storePath + ".rolled-back-v4"
	if err := os.MkdirAll(snap, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{storePath, filepath.Join(snap, node.StoreFile), aside} {
		if err := os.WriteFile(f, []byte("store"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmdline := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(cmdline, []byte("console=ttyAMA0 root=PARTUUID=abc-02 homenode.slot=A panic=10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := commitEnv{cmdline: cmdline, detect: func() (*update.System, error) { return sys, nil },
		healthy: healthy, poll: 10 * time.Millisecond}
	return cfg, env, snap, aside
}

// TestCommitKeepsRollbackCopyUntilHealthy: the commit step on the old
// system after a failed trial (it runs beside homenode, not after it)
// drops the store's rollback copy only once the node has been healthy,
// because the old node must first take its store back from that copy.
// The node is "starting" for its first answers; each answer checks that
// the copy is still there.
func TestCommitKeepsRollbackCopyUntilHealthy(t *testing.T) {
	var asked, goneEarly atomic.Int32
	var snapPath atomic.Value
	healthy := func(context.Context) error {
		n := asked.Add(1)
		if _, err := os.Stat(snapPath.Load().(string)); err != nil {
			goneEarly.Add(1)
		}
		if n < 3 {
			return errors.New("homenode is starting")
		}
		return nil
	}
	cfg, env, snap, aside := commitCard(t, healthy)
	snapPath.Store(snap)
	var out bytes.Buffer
	var logs testkit.LogBuffer
	err := commitWith(context.Background(), cfg, env, time.Minute, slog.New(slog.NewTextHandler(&logs, nil)), &out)
	if err != nil {
		t.Fatalf("commit: %v\n%s", err, logs.String())
	}
	if want := "update to 1.1-1 failed after 1 try, back on 1.0-1"; !strings.Contains(out.String(), want) {
		t.Errorf("commit said %q, want %q", out.String(), want)
	}
	if n := goneEarly.Load(); n > 0 {
		t.Errorf("the rollback copy was gone at %d of the node's %d health answers, before it was healthy", n, asked.Load())
	}
	if n := asked.Load(); n < 3 {
		t.Errorf("the node was asked %d times, want until it was healthy (3)", n)
	}
	for _, p := range []string{snap, aside} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the commit with a healthy node: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, node.StoreFile)); err != nil {
		t.Errorf("the store itself: %v", err)
	}
}

// TestCommitKeepsRollbackCopyWhenNeverHealthy: a node that never becomes
// healthy within the bound keeps the copy (the commit of the old system
// itself still stands: it is the system that runs).
func TestCommitKeepsRollbackCopyWhenNeverHealthy(t *testing.T) {
	cfg, env, snap, aside := commitCard(t, func(context.Context) error { return errors.New("homenode is starting") })
	var logs testkit.LogBuffer
	if err := commitWith(context.Background(), cfg, env, 200*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard); err != nil {
		t.Fatalf("commit: %v\n%s", err, logs.String())
	}
	for _, p := range []string{snap, aside} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s dropped although the node was never healthy: %v", filepath.Base(p), err)
		}
	}
	if !strings.Contains(logs.String(), "rollback copy is kept") {
		t.Errorf("no log line saying the copy is kept:\n%s", logs.String())
	}
	b, _, err := env.mustDetect(t).LoadBoot()
	if err != nil || b.Trial != "" || b.Order[0] != update.SlotA || b.Left[update.SlotB] != 0 {
		t.Errorf("boot state after the rollback's commit: %+v, %v; want A first, no trial, B unbootable", b, err)
	}
}

func (e commitEnv) mustDetect(t *testing.T) *update.System {
	t.Helper()
	s, err := e.detect()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
