package provisioning

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/redpanda-p2p/homenode/node/store"
)

// TestCrashChild is the node process of TestPowerCutAtEachStep; it runs
// only when that test starts it, and SIGKILLs itself at the named step.
func TestCrashChild(t *testing.T) {
	dbPath, keyHex, step := os.Getenv("PROV_CRASH_DB"), os.Getenv("PROV_CRASH_KEY"), os.Getenv("PROV_CRASH_STEP")
	if dbPath == "" {
		t.Skip("child process of TestPowerCutAtEachStep")
	}
	crashPoint = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	raw, _ := hex.DecodeString(keyHex)
	sk, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, sk)
	p, err := New(db.Meta("provisioning"), h, Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	uri, err := p.URI()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("URI %s\n", uri)
	// Serve until the parent closes stdin (or a safety timeout).
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
	}
}

// TestPowerCutAtEachStep SIGKILLs a real node process at each persisted
// step of first start and pairing, then restarts the node on the same
// store file: it must be owned by the phone's identity or waiting with a
// token that works.
func TestPowerCutAtEachStep(t *testing.T) {
	tests := []struct {
		step      string
		wantOwned bool
	}{
		{"waiting-persisted", false}, // first start, token key written, URI never shown
		{"proof-verified", false},    // proof good, owner not yet written
		{"owner-persisted", true},    // owner written, reply never sent
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "node.db")
			sk := newNodeKey(t)
			raw, _ := crypto.MarshalPrivateKey(sk)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PROV_CRASH_DB="+dbPath, "PROV_CRASH_KEY="+hex.EncodeToString(raw), "PROV_CRASH_STEP="+tc.step)
			cmd.Stderr = os.Stderr
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var uri string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if u, ok := strings.CutPrefix(sc.Text(), "URI "); ok {
					uri = u
					break
				}
			}
			owner := newOwner(t)
			if uri != "" {
				if err := Pair(ctxT(t), newHost(t, nil), uri, owner); err == nil {
					t.Fatal("Pair succeeded though the node died before replying")
				}
			}
			go io.Copy(io.Discard, stdout)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v", tc.step, err)
			}

			n := startNode(t, dbPath, sk, Config{})
			switch st := n.p.State(); {
			case tc.wantOwned:
				o, ok := n.p.Owner()
				if st != StateOwned || !ok || !o.Key.Equal(owner.Public()) {
					t.Fatalf("state %v owner %x, want owned by %x", st, o.Key, owner.Public())
				}
				// The phone asks again with what it has and learns it owns
				// the node; nobody else gets in.
				if err := PairURI(ctxT(t), newHost(t, nil), withAddrs(t, uri, n), owner); err != nil {
					t.Fatalf("owner retry after the cut: %v", err)
				}
				if err := PairURI(ctxT(t), newHost(t, nil), withAddrs(t, uri, n), newOwner(t)); !errors.Is(err, ErrNotWaiting) {
					t.Fatalf("stranger after the cut: %v", err)
				}
			default:
				if st != StateWaiting {
					t.Fatalf("state %v, want waiting", st)
				}
				if uri != "" {
					if err := PairURI(ctxT(t), newHost(t, nil), withAddrs(t, uri, n), owner); !errors.Is(err, ErrRejected) {
						t.Fatalf("token from before the cut: %v, want ErrRejected", err)
					}
				}
				if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), owner); err != nil {
					t.Fatalf("pairing with the new token: %v", err)
				}
				if !n.p.IsOwner(owner.Public().(ed25519.PublicKey)) {
					t.Fatal("owner not recorded")
				}
			}
		})
	}
}
