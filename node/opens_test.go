package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestNoSyncSessionWithAStranger: two nodes connected without a reason
// to sync (neither configured the other, no registration, no proof, no
// channel served by hand: a DHT contact) open no sync session, so neither
// is told what the other serves. Once the operator serves a channel by
// hand (open to every peer), the node opens the session and a post goes
// through.
func TestNoSyncSessionWithAStranger(t *testing.T) {
	var logs testkit.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := startWith(t, Config{DataDir: t.TempDir(), NoDHT: true, Logger: log})
	b := startWith(t, Config{DataDir: t.TempDir(), NoDHT: true, Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Host.Connect(ctx, peer.AddrInfo{ID: b.Host.ID(), Addrs: b.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the opener decided not to open", func() bool {
		return strings.Contains(logs.String(), "no reason to sync with the peer yet")
	})
	if len(a.Sync.Peers()) != 0 || len(b.Sync.Peers()) != 0 {
		t.Fatalf("sync sessions with a stranger: a has %v, b has %v", a.Sync.Peers(), b.Sync.Peers())
	}

	key, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(key.ID())
	b.Serve(key.ID())
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	testkit.Eventually(t, "a session once a channel is served to everyone", func() bool {
		return slices.Contains(a.Sync.Peers(), b.Host.ID()) && slices.Contains(b.Sync.Peers(), a.Host.ID())
	})
	author, _ := channel.NewIdentity(rand.Reader)
	env, err := key.Seal(author, channel.KindText, []byte("served by hand"), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Sync.Publish(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, b.Store, id)
}
