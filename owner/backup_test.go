package owner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/node/store"
)

// backupNode is a node host serving the owner protocol with a real store.
func backupNode(t *testing.T, ownerPub ed25519.PublicKey) (host.Host, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	node := newHost(t)
	(&Server{IsOwner: func(k ed25519.PublicKey) bool { return bytes.Equal(k, ownerPub) }, Backups: db.Meta("backup")}).Register(node)
	return node, db
}

func connectTo(t *testing.T, h, node host.Host) {
	t.Helper()
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func TestBackupPutGetFetch(t *testing.T) {
	ownerPub, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	node, db := backupNode(t, ownerPub)
	phone, newPhone := newHost(t), newHost(t)
	connectTo(t, phone, node)
	connectTo(t, newPhone, node)
	ctx := context.Background()
	lookup := bytes.Repeat([]byte{7}, LookupSize)
	blob := []byte("RPBK sealed bytes the node does not parse")

	if _, err := GetBackup(ctx, phone, node.ID(), ownerKey); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("get before put: %v", err)
	}
	if _, err := FetchBackup(ctx, newPhone, node.ID(), lookup); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("fetch before put: %v", err)
	}
	for _, tc := range []struct {
		name   string
		key    ed25519.PrivateKey
		lookup []byte
		blob   []byte
		want   error
	}{
		{"stranger", strangerKey, lookup, blob, ErrNotOwner},
		{"too large", ownerKey, lookup, make([]byte, MaxBackup+1), ErrTooLarge},
		{"short lookup", ownerKey, lookup[:5], blob, nil},
		{"empty blob", ownerKey, lookup, nil, nil},
	} {
		err := PutBackup(ctx, phone, node.ID(), tc.key, tc.lookup, tc.blob)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := db.Meta("backup").Get(keyBlob); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused put stored something")
	}
	if err := PutBackup(ctx, phone, node.ID(), ownerKey, lookup, blob); err != nil {
		t.Fatal(err)
	}
	if got, err := GetBackup(ctx, phone, node.ID(), ownerKey); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("owner get: %q, %v", got, err)
	}
	if _, err := GetBackup(ctx, phone, node.ID(), strangerKey); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("stranger get: %v", err)
	}
	if got, err := FetchBackup(ctx, newPhone, node.ID(), lookup); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("fetch by lookup: %q, %v", got, err)
	}
	wrong := bytes.Repeat([]byte{8}, LookupSize)
	// The burst allows fetchBurst attempts, two of which were spent above.
	for i := 0; i < fetchBurst-2; i++ {
		if _, err := FetchBackup(ctx, newPhone, node.ID(), wrong); !errors.Is(err, ErrNoBackup) {
			t.Fatalf("wrong lookup %d: %v", i, err)
		}
	}
	// Then the node refuses even the right ID until the limit refills.
	if _, err := FetchBackup(ctx, newPhone, node.ID(), lookup); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("attempt over the limit: %v", err)
	}
}

// The whole path: a client's backup kept on its node, fetched by a fresh
// phone with the passphrase alone, restored to the same identity.
func TestBackupRestoreFromNode(t *testing.T) {
	old, err := client.Open(client.Config{Home: filepath.Join(t.TempDir(), "old"), Create: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Channels().Create("family"); err != nil {
		t.Fatal(err)
	}
	pub, _ := ed25519PublicOf(t, old)
	node, _ := backupNode(t, pub)
	const pass = "the quick brown fox jumps"
	blob, err := old.Backups().SealWith(pass, client.BackupParams{Time: 1, MemoryKiB: 1 << 10, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = old.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
		connectTo(t, h, node)
		return PutBackup(ctx, h, node.ID(), key, client.BackupLookupID(pass, node.ID().String()), blob)
	})
	if err != nil {
		t.Fatal(err)
	}
	newPhone := newHost(t)
	connectTo(t, newPhone, node)
	got, err := FetchBackup(ctx, newPhone, node.ID(), client.BackupLookupID(pass, node.ID().String()))
	if err != nil {
		t.Fatal(err)
	}
	h := filepath.Join(t.TempDir(), "new")
	if err := client.Restore(h, pass, got); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(client.Config{Home: h, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID() != old.ID() {
		t.Fatal("restored identity differs")
	}
	if _, err := c.Channels().Get("family"); err != nil {
		t.Fatal(err)
	}
}

func ed25519PublicOf(t *testing.T, c *client.Client) (ed25519.PublicKey, error) {
	var pub ed25519.PublicKey
	err := c.UseIdentity(func(_ host.Host, k ed25519.PrivateKey) error {
		pub = k.Public().(ed25519.PublicKey)
		return nil
	})
	return pub, err
}

// Responses come from a node that may be hostile.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"result":{"blob":"UlBCSw=="}}`))
	f.Add([]byte(`{"code":"rate_limited","error":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := decodeResponse(b)
		if err != nil {
			return
		}
		if blob, err := decodeBackup(raw); err == nil && (len(blob) == 0 || len(blob) > MaxBackup) {
			t.Fatalf("accepted a blob of %d bytes", len(blob))
		}
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
