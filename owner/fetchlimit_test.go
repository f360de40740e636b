package owner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
)

// hostAt is a peer whose connections come from ip (a loopback alias).
func hostAt(t *testing.T, ip string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/" + ip + "/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestFetchLimitPerAddress is issue 19's blocked restore: a stranger
// asking for backups until its bucket is dry, with a fresh peer ID each
// time, is refused, and the owner's new phone on another address still
// gets its blob at once.
func TestFetchLimitPerAddress(t *testing.T) {
	ownerPub, ownerKey, _ := ed25519.GenerateKey(rand.Reader)
	node, _ := backupNode(t, ownerPub)
	ctx := context.Background()
	lookup := bytes.Repeat([]byte{7}, LookupSize)
	blob := []byte("RPBK sealed")
	phone := newHost(t)
	connectTo(t, phone, node)
	if err := PutBackup(ctx, phone, node.ID(), ownerKey, lookup, blob); err != nil {
		t.Fatal(err)
	}
	guess := make([]byte, LookupSize)
	limited := 0
	for i := range fetchBurst + 5 {
		stranger := hostAt(t, "127.0.0.77")
		connectTo(t, stranger, node)
		rand.Read(guess)
		_, err := FetchBackup(ctx, stranger, node.ID(), guess)
		switch {
		case errors.Is(err, ErrRateLimited):
			limited++
		case !errors.Is(err, ErrNoBackup):
			t.Fatalf("stranger attempt %d: %v", i, err)
		}
		stranger.Close()
	}
	if limited != 5 {
		t.Fatalf("%d of the stranger's attempts were limited, want 5 (past its burst of %d)", limited, fetchBurst)
	}
	newPhone := hostAt(t, "127.0.0.78")
	connectTo(t, newPhone, node)
	if got, err := FetchBackup(ctx, newPhone, node.ID(), lookup); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the new phone's fetch while a stranger is limited: %q, %v", got, err)
	}
	// The owner's own path is not limited at all.
	for range fetchBurst + 2 {
		if got, err := GetBackup(ctx, phone, node.ID(), ownerKey); err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("owner get: %q, %v", got, err)
		}
	}
}
