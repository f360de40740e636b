package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/owner"
)

const testPass = "seven tired otters paddle home"

// TestBackupCommands: create, restore into a fresh home (same identity
// and channels), a wrong passphrase and a corrupted file refused, and
// restore --node from a node's owner service by the passphrase alone.
func TestBackupCommands(t *testing.T) {
	t.Setenv(envPassphrase, testPass)
	dir := t.TempDir()
	old, fresh := filepath.Join(dir, "old"), filepath.Join(dir, "fresh")
	out, _, err := runCLI("init", "--home", old)
	if err != nil {
		t.Fatal(err)
	}
	id := field(t, out, "identity")
	if _, _, err := runCLI("channel", "new", "fam", "--home", old); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "b.rpbk")
	if _, _, err := runCLI("backup", "create", file, "--home", old); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	out, _, err = runCLI("backup", "restore", file, "--home", fresh)
	if err != nil {
		t.Fatal(err)
	}
	if field(t, out, "identity") != id || field(t, out, "channels") != "1" {
		t.Fatalf("restored:\n%s", out)
	}
	if _, _, err := runCLI("backup", "restore", file, "--home", fresh); !errors.Is(err, client.ErrHomeNotEmpty) {
		t.Fatalf("restore over an identity: %v", err)
	}
	blob, _ := os.ReadFile(file)
	blob[len(blob)-10] ^= 0xff
	bad := filepath.Join(dir, "bad.rpbk")
	os.WriteFile(bad, blob, 0o600)
	if _, _, err := runCLI("backup", "restore", bad, "--home", filepath.Join(dir, "x")); !errors.Is(err, client.ErrCorruptBackup) {
		t.Fatalf("corrupted file: %v", err)
	}
	t.Setenv(envPassphrase, testPass+"?")
	if _, _, err := runCLI("backup", "restore", file, "--home", filepath.Join(dir, "y")); !errors.Is(err, client.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}

	// The node side: a host serving the owner protocol with a real store,
	// holding the blob under the passphrase's lookup ID.
	db, err := store.Open(filepath.Join(dir, "node.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	node, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	c, err := client.Open(client.Config{Home: old})
	if err != nil {
		t.Fatal(err)
	}
	var ownerPub ed25519.PublicKey
	blob, _ = os.ReadFile(file)
	(&owner.Server{IsOwner: func(k ed25519.PublicKey) bool { return bytes.Equal(k, ownerPub) }, Backups: db.Meta("backup")}).Register(node)
	err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
		ownerPub = key.Public().(ed25519.PublicKey)
		if err := h.Connect(context.Background(), peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()}); err != nil {
			return err
		}
		return owner.PutBackup(context.Background(), h, node.ID(), key, client.BackupLookupID(testPass, node.ID().String()), blob)
	})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	addr := node.Addrs()[0].String() + "/p2p/" + node.ID().String()
	if _, _, err := runCLI("backup", "restore", "--node", addr, "--home", filepath.Join(dir, "z")); !errors.Is(err, owner.ErrNoBackup) {
		t.Fatalf("wrong passphrase at the node: %v", err)
	}
	t.Setenv(envPassphrase, testPass)
	out, _, err = runCLI("backup", "restore", "--node", addr, "--home", filepath.Join(dir, "phone"))
	if err != nil {
		t.Fatal(err)
	}
	if field(t, out, "identity") != id {
		t.Fatalf("restored from node:\n%s", out)
	}
	if _, _, err := runCLI("backup", "restore", "--home", filepath.Join(dir, "w")); err == nil || !strings.Contains(err.Error(), "one of them") {
		t.Fatalf("neither file nor node: %v", err)
	}
}
