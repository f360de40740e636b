package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
)

// TestNoSyncSessionWithAStranger: two nodes connected without a reason
// to sync (neither configured the other, no registration, no proof: a
// DHT contact) open no sync session, so neither is told what the other
// serves, even though both serve a channel by hand (Serve, as a paired
// appliance serves its owner's channels), which every peer may sync.
// Before, serving a channel by hand opened a session with every peer
// that connected.
func TestNoSyncSessionWithAStranger(t *testing.T) {
	var logs testkit.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := startWith(t, Config{DataDir: t.TempDir(), NoDHT: true, Logger: log})
	b := startWith(t, Config{DataDir: t.TempDir(), NoDHT: true, Logger: log})
	key, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve(key.ID())
	b.Serve(key.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Host.Connect(ctx, peer.AddrInfo{ID: b.Host.ID(), Addrs: b.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	// Both sides decide (the smaller would open at once, the larger after
	// a wait), and neither starts either without a reason: the line is
	// logged by the side whose peer it names.
	for _, other := range []*Node{b, a} {
		of := "peer=" + other.Host.ID().String()
		testkit.Eventually(t, "the node decided not to open", func() bool {
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, of) && strings.Contains(l, "no reason to sync with the peer yet") {
					return true
				}
			}
			return false
		})
	}
	if len(a.Sync.Peers()) != 0 || len(b.Sync.Peers()) != 0 {
		t.Fatalf("sync sessions with a stranger: a has %v, b has %v", a.Sync.Peers(), b.Sync.Peers())
	}
}

// dirsInOrder returns two data directories whose identities (made here)
// give small the smaller peer ID.
func dirsInOrder(t *testing.T) (small, large string) {
	t.Helper()
	idOf := func(dir string) peer.ID {
		sk, err := p2p.LoadOrCreateIdentity(filepath.Join(dir, "identity.key"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(sk)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	small, large = t.TempDir(), t.TempDir()
	for bytes.Compare([]byte(idOf(small)), []byte(idOf(large))) > 0 {
		large = t.TempDir()
	}
	return small, large
}

// TestOnlyTheLargerConfiguredThePeer: of a pair of nodes only the larger
// peer ID was configured with the other (--peer); both serve a channel by
// hand. The smaller, which opens a pair's session, does not know the
// larger, and serving by hand is no reason to open; the larger opens the
// session after a wait, and posts go through both ways.
func TestOnlyTheLargerConfiguredThePeer(t *testing.T) {
	key, err := channel.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	author, _ := channel.NewIdentity(rand.Reader)
	smallDir, largeDir := dirsInOrder(t)
	small := startWith(t, Config{DataDir: smallDir, NoDHT: true, Channels: []channel.ID{key.ID()}})
	large := startWith(t, Config{DataDir: largeDir, NoDHT: true, Channels: []channel.ID{key.ID()},
		Peers: []string{small.Addrs()[0]}})
	if bytes.Compare([]byte(small.Host.ID()), []byte(large.Host.ID())) > 0 {
		t.Fatal("the data directories gave the peer IDs in the wrong order")
	}
	env, err := key.Seal(author, channel.KindText, []byte("to the node that configured me"), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := small.Sync.Publish(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, large.Store, id)
	env2, _ := key.Seal(author, channel.KindText, []byte("back to the smaller"), time.Now(), rand.Reader)
	id2, err := large.Sync.Publish(context.Background(), env2)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, small.Store, id2)
}
