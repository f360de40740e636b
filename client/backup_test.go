package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// testParams keep the Argon2id work small in tests; the format and the
// code path are the same as with DefaultBackupParams.
var testParams = BackupParams{Time: 1, MemoryKiB: 1 << 10, Threads: 1}

const pass = "correct horse battery staple"

func TestBackupRestoreOnFreshClient(t *testing.T) {
	old := openClient(t, home(t, "old"))
	fam, err := old.Channels().Create("family")
	if err != nil {
		t.Fatal(err)
	}
	other := openClient(t, home(t, "other"))
	if _, err := other.Channels().Create("news"); err != nil {
		t.Fatal(err)
	}
	roKey, _ := other.Channels().Share("news", "read")
	if _, err := old.Channels().Join("news", roKey); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Nodes().Add("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"); err != nil {
		t.Fatal(err)
	}
	ticket(t, other, old)
	inv, _ := old.Invites().Create()
	blob, err := old.Backups().SealWith(pass, testParams)
	if err != nil {
		t.Fatal(err)
	}
	newHome := home(t, "new")
	if err := Restore(newHome, pass, blob); err != nil {
		t.Fatal(err)
	}
	fresh := openClient(t, newHome)
	if fresh.ID() != old.ID() {
		t.Fatalf("identity %s, want %s", fresh.ID(), old.ID())
	}
	want, _ := old.Channels().List()
	got, _ := fresh.Channels().List()
	if len(got) != 2 || len(got) != len(want) {
		t.Fatalf("channels %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("channel %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if k, _ := fresh.Channels().Share("family", ""); k != fam {
		t.Fatal("the family key did not survive")
	}
	nodes, err := fresh.Nodes().List()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
	if n, _ := fresh.Invites().Pending(); n != 1 {
		t.Fatalf("%d pending invitations, want 1", n)
	}
	// The restored client can finish the invitation made before the backup.
	bob := openClient(t, home(t, "bob"))
	ab, err := bob.Invites().Accept("old", inv)
	if err != nil {
		t.Fatal(err)
	}
	if fa, err := fresh.Invites().Complete("bob", ab.Answer); err != nil || fa.SafetyCode != ab.SafetyCode {
		t.Fatalf("completing a restored invitation: %v", err)
	}
	// A home with an identity is never overwritten.
	old.Close()
	if err := Restore(old.cfg.Home, pass, blob); !errors.Is(err, ErrHomeNotEmpty) {
		t.Fatalf("restore over an identity: %v", err)
	}
}

func TestBackupRefusals(t *testing.T) {
	c := openClient(t, home(t, "c"))
	c.Channels().Create("x")
	blob, err := c.Backups().SealWith(pass, testParams)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backups().Seal("short"); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("short passphrase: %v", err)
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), blob...)
		b[i] ^= 1
		return b
	}
	huge := append([]byte(nil), blob...)
	huge[9], huge[10] = 0x7f, 0xff // memory far over the bound
	for _, tc := range []struct {
		name string
		blob []byte
		pass string
		want error
	}{
		{"wrong passphrase", blob, pass + "!", ErrWrongPassphrase},
		{"flipped ciphertext", flip(len(blob) - 30), pass, ErrCorruptBackup},
		{"flipped tag", flip(len(blob) - 1), pass, ErrCorruptBackup},
		{"flipped salt", flip(15), pass, ErrWrongPassphrase}, // another salt is another key
		{"flipped nonce", flip(backupHeaderSize - 1), pass, ErrCorruptBackup},
		{"truncated", blob[:len(blob)-5], pass, ErrCorruptBackup},
		{"header only", blob[:backupHeaderSize], pass, ErrCorruptBackup},
		{"not a backup", []byte("hello, this is not a backup at all, not even close to it"), pass, ErrCorruptBackup},
		{"future version", func() []byte { b := flip(4); b[4] = 9; return b }(), pass, ErrCorruptBackup},
		{"absurd parameters", huge, pass, ErrCorruptBackup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := home(t, "r")
			err := Restore(h, tc.pass, tc.blob)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(h, StoreFile)); err == nil {
				t.Fatal("a failed restore left a store behind")
			}
		})
	}
}

// Backup blobs come from files and from home nodes that may be hostile.
func FuzzOpenBackup(f *testing.F) {
	f.Add([]byte("RPBK"))
	plain := []byte(`{"records":[{"b":"client","k":"aWRlbnRpdHk=","v":"AA=="}]}`)
	b, _ := sealBackup(plain, pass, testParams)
	f.Add(b)
	f.Fuzz(func(t *testing.T, blob []byte) {
		p, _, _, _, err := parseBackupHeader(blob)
		if err != nil {
			if !errors.Is(err, ErrCorruptBackup) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if p.MemoryKiB > 4<<10 || p.Time > 2 { // keep each run cheap
			return
		}
		if _, err := openBackup(blob, pass); err != nil && !errors.Is(err, ErrCorruptBackup) && !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}

func BenchmarkBackupKeyDefault(b *testing.B) {
	salt := make([]byte, backupSaltSize)
	for b.Loop() {
		backupKeys(pass, salt, DefaultBackupParams)
	}
}
