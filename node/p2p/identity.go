package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// IdentityFileName is the identity file's name inside the data directory.
const IdentityFileName = "identity.key"

// identityMode is the only mode the identity file is created with. Looser
// modes on an existing file are refused (ErrIdentityPermissions) rather than
// fixed silently: someone else may have read or replaced the key.
const identityMode fs.FileMode = 0o600

// LoadOrCreateIdentity returns the Ed25519 key stored at path, creating it
// (mode 0600, written atomically, never overwriting) if the file does not
// exist. A file that exists but cannot be used is an error that names the
// file and what to do; it is never replaced.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	sk, err := loadIdentity(path)
	if err == nil {
		return sk, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return createIdentity(path)
}

func loadIdentity(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: open identity %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("p2p: stat identity %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrIdentityCorrupt, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; if the key has not leaked run 'chmod 600 %s', otherwise remove it to get a new peer ID (friends must re-add the node)",
			ErrIdentityPermissions, path, perm, path)
	}
	// A marshalled Ed25519 key is 68 bytes; anything much larger is not ours.
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("%w: %s: empty or unreadable (%v); restore it from a backup or remove it to get a new peer ID", ErrIdentityCorrupt, path, err)
	}
	sk, err := crypto.UnmarshalPrivateKey(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; restore it from a backup or remove it to get a new peer ID", ErrIdentityCorrupt, path, err)
	}
	if sk.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%w: %s holds a %s key, want Ed25519", ErrIdentityCorrupt, path, sk.Type())
	}
	return sk, nil
}

func createIdentity(path string) (crypto.PrivKey, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate identity: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("p2p: marshal identity: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("p2p: create identity dir %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("p2p: create identity %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(identityMode); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: chmod identity %s: %w", path, err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: write identity %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: sync identity %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("p2p: close identity %s: %w", path, err)
	}
	// Link, not rename: it fails if another process created the file first,
	// so an existing identity is never overwritten.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadIdentity(path)
		}
		return nil, fmt.Errorf("p2p: install identity %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new directory entry durable; best effort
		d.Close()
	}
	return sk, nil
}
