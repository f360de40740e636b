package peersync

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestDiskFullReason: a node whose disk is full (its store on a 2 MiB
// tmpfs) refuses a pushed message with the reason DISK_FULL, not
// INTERNAL, and keeps every message it acknowledged.
func TestDiskFullReason(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to mount a 2 MiB tmpfs (run the tests as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })

	h := testhost.New(t)
	db, err := store.Open(filepath.Join(dir, "store.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	b := &node{h: h, db: db, svc: New(h, db, Config{Logger: testLog()})}
	t.Cleanup(func() { b.svc.Close(); h.Close(); db.Close() })
	w := newWriter(t)
	b.svc.Want(w.id())
	x := newNode(t, nil)
	connect(t, x, b)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(b, x) })

	body := strings.Repeat("x", 60<<10)
	stored, refused := 0, false
	for i := range 200 { // 12 MB into 2 MiB
		e := w.seal(t, body, time.Now())
		_, err := x.svc.PushTo(context.Background(), b.h.ID(), e)
		if err == nil {
			stored++
			continue
		}
		var rj *RejectError
		if !errors.As(err, &rj) {
			t.Fatalf("push %d: %v, want a RejectError", i, err)
		}
		if rj.Reason != wirepb.Reason_REASON_DISK_FULL || !strings.Contains(rj.Detail, "disk full") {
			t.Fatalf("push %d on a full disk: %s %q, want REASON_DISK_FULL", i, rj.Reason, rj.Detail)
		}
		refused = true
		break
	}
	if stored == 0 || !refused {
		t.Fatalf("%d stored; the disk never filled", stored)
	}
	if db.DiskFullAt().IsZero() {
		t.Fatal("the store does not say when the disk was full (the status page's warning)")
	}
	st, err := db.Stats()
	if err != nil || st.Messages != stored {
		t.Fatalf("the node holds %d messages (%v), acknowledged %d", st.Messages, err, stored)
	}
}
