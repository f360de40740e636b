package p2p

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// FuzzLoadIdentity feeds arbitrary file contents to the identity loader: it
// must return an Ed25519 key or ErrIdentityCorrupt, never panic.
func FuzzLoadIdentity(f *testing.F) {
	sk, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	raw, _ := crypto.MarshalPrivateKey(sk)
	f.Add(raw)
	f.Add(raw[:10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), IdentityFileName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := loadIdentity(path)
		if err != nil {
			if !errors.Is(err, ErrIdentityCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if _, err := k.Raw(); err != nil {
			t.Fatal(err)
		}
	})
}
