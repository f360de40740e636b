package peersync

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/store"
)

// TestSessionWhenPeerStartsSyncLate: a node's host listens, and its
// discovery dials its friends, before its sync service runs. The opener
// (the smaller peer ID) connected to it then, and its open was refused
// (the protocol not supported yet); when the peer's sync comes up,
// identify tells the opener, which opens the session then, and a message
// goes through. Without that the pair had no session for as long as the
// connection lasted: a restarted node's friend relayed nothing to it.
func TestSessionWhenPeerStartsSyncLate(t *testing.T) {
	var logs testkit.LogBuffer
	opener := newNode(t, nil, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	late := testhost.New(t)
	for bytes.Compare([]byte(opener.h.ID()), []byte(late.ID())) > 0 {
		late = testhost.New(t) // the opener is the smaller peer ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := opener.h.Connect(ctx, peer.AddrInfo{ID: late.ID(), Addrs: late.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the opener's open refused", func() bool {
		return strings.Contains(logs.String(), "no sync session")
	})

	db, err := store.Open(filepath.Join(t.TempDir(), "store.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{h: late, db: db, svc: New(late, db, Config{Logger: testLog(), FetchTimeout: 2 * time.Second})}
	t.Cleanup(func() {
		n.svc.Close()
		db.Close()
	})
	testkit.Eventually(t, "a session once the peer speaks sync", func() bool { return sessionUp(opener, n) })

	w := newWriter(t)
	opener.svc.Want(w.id())
	n.svc.Want(w.id())
	e := w.seal(t, "sent after the late start", time.Now())
	if _, err := opener.svc.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the message reaches the late peer", func() bool { return has(t, n, e.ID()) })
}
