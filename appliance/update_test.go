package appliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/report"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/update"
)

// TestReportIntoMasterChannel: the owner gives the node a write-only key
// of its master channel over the owner protocol (a read key or a stranger
// is refused); the node's update report is then a message in that channel
// that the owner's devices open, authored by the node's own key.
func TestReportIntoMasterChannel(t *testing.T) {
	app, _ := startInProcess(t, nil)
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
	node := app.node.Host.ID()
	master, _ := channel.NewKey(rand.Reader)
	ro, _ := master.ReadOnly()
	wo, _ := master.WriteOnly()
	for _, k := range []*channel.Key{master, ro} {
		if err := owner.SetReportKey(ctx, phone, node, ownerKey, k.String()); !errors.Is(err, owner.ErrBadReportKey) {
			t.Fatalf("a %s key as report key: %v, want ErrBadReportKey", k.Capability(), err)
		}
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	if err := owner.SetReportKey(ctx, phone, node, stranger, wo.String()); !errors.Is(err, owner.ErrNotOwner) {
		t.Fatalf("a stranger's report key: %v", err)
	}
	if err := owner.SetReportKey(ctx, phone, node, ownerKey, wo.String()); err != nil {
		t.Fatal(err)
	}
	// The owner's devices list the master channel for the node to serve.
	app.node.Serve(master.ID())
	res := update.Result{ID: "1", Outcome: update.Failed, Version: "1.1-1", From: "1.0-1", Running: "1.0-1", Tries: 1, At: time.Now()}
	if err := app.reportUpdate(ctx, res); err != nil {
		t.Fatal(err)
	}
	hs, err := app.node.Store.Headers(master.ID(), 0, math.MaxInt64, 0)
	if err != nil || len(hs) != 1 {
		t.Fatalf("master channel holds %d messages, %v", len(hs), err)
	}
	e, err := app.node.Store.Get(hs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wo.Open(e); err == nil {
		t.Fatal("the node's write-only key opened the master channel's message")
	}
	m, err := master.Open(e)
	if err != nil {
		t.Fatalf("the owner's full key does not open the report: %v", err)
	}
	pub, _ := app.node.Host.ID().ExtractPublicKey()
	raw, _ := pub.Raw()
	if !bytes.Equal(m.Author[:], raw) {
		t.Fatal("the report is not authored by the node's key")
	}
	got, err := report.Decode(m.Body)
	if err != nil || got.Text != res.Message() || got.Kind != report.KindUpdate || got.Version != "1.1-1" {
		t.Fatalf("report %+v, %v; want %q", got, err, res.Message())
	}
}

// TestNoUpdatesOffTheImage: a node not booted by the A/B image answers the
// owner's update commands with ErrNoUpdates (apt updates it).
func TestNoUpdatesOffTheImage(t *testing.T) {
	app, _ := startInProcess(t, nil)
	ctx := context.Background()
	phone, _ := libp2p.New(libp2p.NoListenAddrs)
	defer phone.Close()
	_, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	r, _ := app.Report(ctx)
	if err := provisioning.Pair(ctx, phone, r.Pairing.URI, ownerKey); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.GetUpdateState(ctx, phone, app.node.Host.ID(), ownerKey); !errors.Is(err, owner.ErrNoUpdates) {
		t.Fatalf("update status off the image: %v, want ErrNoUpdates", err)
	}
	if r, _ := app.Report(ctx); r.Update != nil {
		t.Fatalf("the status report has an update section off the image: %+v", r.Update)
	}
	h, err := app.Health(ctx)
	if err != nil || !h.Ready || h.Store != "ok" || len(h.Listen) == 0 {
		t.Fatalf("health %+v, %v", h, err)
	}
}

// TestUploadFromPhone: the phone carries a bundle to its node over the
// owner protocol; a partial upload left by an earlier attempt is resumed,
// not sent again; the node checks it and asks for its installation. A
// stranger may not upload, and a bundle signed by another key is refused.
func TestUploadFromPhone(t *testing.T) {
	app, _ := startInProcess(t, nil)
	ctx := context.Background()
	u := testUpdater(t, "1.0-1")
	app.upd.Store(u)
	phone, _ := libp2p.New(libp2p.NoListenAddrs)
	defer phone.Close()
	_, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	r, _ := app.Report(ctx)
	if err := provisioning.Pair(ctx, phone, r.Pairing.URI, ownerKey); err != nil {
		t.Fatal(err)
	}
	node := app.node.Host.ID()
	dir := t.TempDir()
	b := makeBundleFile(t, dir, "1.1-1", devKey(t))
	raw, _ := os.ReadFile(b)
	sum := sha256.Sum256(raw)
	// An earlier attempt got a third of it across.
	u.sys.State.Ensure()
	part, _ := u.sys.State.SpoolFile("upload-" + hex.EncodeToString(sum[:])[:16] + ".part")
	os.WriteFile(part, raw[:len(raw)/3], 0o640)

	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := owner.UploadBundle(ctx, phone, node, stranger, b, true, false, nil); !errors.Is(err, owner.ErrNotOwner) {
		t.Fatalf("a stranger's upload: %v", err)
	}
	first := int64(-1)
	name, err := owner.UploadBundle(ctx, phone, node, ownerKey, b, true, false, func(done, total int64) {
		if first < 0 {
			first = done - 1
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if first < int64(len(raw)/3) {
		t.Errorf("the upload started at %d, not where the earlier one stopped (%d)", first, len(raw)/3)
	}
	req, ok, _ := u.sys.State.TakeRequest()
	if !ok || req.Bundle != name || req.Source != "phone" {
		t.Fatalf("request %+v %v, want %s from the phone", req, ok, name)
	}
	st, err := owner.GetUpdateState(ctx, phone, node, ownerKey)
	if err != nil || st.Update.Slot != "A" {
		t.Fatalf("update state %+v, %v", st, err)
	}

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	bad := makeBundleFile(t, t.TempDir(), "1.2-1", other)
	if _, err := owner.UploadBundle(ctx, phone, node, ownerKey, bad, true, false, nil); !errors.Is(err, owner.ErrUpdateRefused) {
		t.Fatalf("a bundle signed by another key: %v, want ErrUpdateRefused", err)
	}
	if _, ok, _ := u.sys.State.TakeRequest(); ok {
		t.Fatal("a refused bundle was sent to the installer")
	}
}
