package store

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/redpanda-p2p/homenode/node/channel"
)

func TestOpenBadFile(t *testing.T) {
	validStore := func(t *testing.T, path string) {
		db, err := Open(path, Options{Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Put(envelope(newChannel(), 1, 10)); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	tests := []struct {
		name        string
		make        func(t *testing.T, path string)
		wantCorrupt bool
	}{
		{"random garbage", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			os.WriteFile(path, b, 0o600)
		}, true},
		{"short text file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("not a database\n"), 0o600)
		}, true},
		{"both meta pages zeroed", func(t *testing.T, path string) {
			validStore(t, path)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt(make([]byte, 2*os.Getpagesize()), 0)
			f.Close()
		}, true},
		{"foreign bbolt file", func(t *testing.T, path string) {
			b, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err })
			b.Close()
		}, true},
		{"newer schema", func(t *testing.T, path string) {
			validStore(t, path)
			b, _ := bolt.Open(path, 0o600, nil)
			b.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bInfo).Put(kSchema, binary.BigEndian.AppendUint32(nil, 99))
			})
			b.Close()
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.db")
			tc.make(t, path)
			before := fileHash(t, path)
			db, err := Open(path, Options{Logger: quietLog})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded on a bad file")
			}
			if errors.Is(err, ErrCorrupt) != tc.wantCorrupt {
				t.Fatalf("Open: %v; want ErrCorrupt=%v", err, tc.wantCorrupt)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move") {
				t.Fatalf("error does not name the file and what to do: %v", err)
			}
			if fileHash(t, path) != before {
				t.Fatal("Open changed the bad file")
			}
		})
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	openAt(t, path, Options{})
	// flock is per open file, so a second Open in this process contends
	// exactly as another process would.
	_, err := Open(path, Options{Logger: quietLog, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want ErrLocked naming %s", err, path)
	}
}

// TestDiskFull fills a small tmpfs: the write that does not fit fails with
// ErrDiskFull and every acknowledged message survives, also a reopen.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to mount a 2 MiB tmpfs for the ENOSPC test (run the tests as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	path := filepath.Join(dir, "full.db")
	db, err := Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ch := newChannel()
	var mu sync.Mutex
	var acked []channel.MessageID
	var fullErrs []error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 { // far more than 2 MiB
				id, err := db.Put(envelope(ch, 1, 16<<10))
				mu.Lock()
				if err != nil {
					fullErrs = append(fullErrs, err)
					mu.Unlock()
					return
				}
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(fullErrs) == 0 || len(acked) == 0 {
		t.Fatalf("%d stored, %d errors: the disk never filled", len(acked), len(fullErrs))
	}
	for _, err := range fullErrs {
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("Put on a full disk: %v, want ErrDiskFull", err)
		}
	}
	check := func(db *DB) {
		t.Helper()
		for _, id := range acked {
			if _, err := db.Get(id); err != nil {
				t.Fatalf("acknowledged message lost on a full disk: %v", err)
			}
		}
		if err := db.Check(); err != nil {
			t.Fatal(err)
		}
	}
	check(db)
	// A failed append was cut back: no segment holds a partial record,
	// which a later batch would have turned into mid-file damage.
	segs, err := loadWAL(path)
	if err != nil {
		t.Fatalf("WAL after the disk filled: %v", err)
	}
	for _, s := range segs {
		if s.scan.damage != nil {
			t.Fatalf("%s: %v after a failed append", s.path, s.scan.damage)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatalf("reopen on the full disk: %v", err)
	}
	defer db.Close()
	check(db)
	// Retention frees the disk (every message here is from 1970): sweeping
	// must work on a full disk, where the WAL cannot be applied until it
	// has, and then the store takes messages again.
	recovered := false
	for range 5 {
		if _, err := db.Sweep(); err != nil {
			t.Fatalf("Sweep on a full disk: %v", err)
		}
		if _, err := db.Put(envelope(ch, 1, 16<<10)); err == nil {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Fatal("the store did not take messages again after retention freed the disk")
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	// A factory reset works on a full disk too.
	filled := false
	for range 200 {
		if _, err := db.Put(envelope(ch, time.Now().UnixMilli(), 16<<10)); errors.Is(err, ErrDiskFull) {
			filled = true
			break
		}
	}
	if !filled {
		t.Fatal("the disk did not fill again")
	}
	if err := db.Wipe(); err != nil {
		t.Fatalf("Wipe on a full disk: %v", err)
	}
	if s, _ := db.Stats(); s.Messages != 0 {
		t.Fatalf("%d messages after a wipe on a full disk", s.Messages)
	}
	if _, err := db.Put(envelope(ch, time.Now().UnixMilli(), 16<<10)); err != nil {
		t.Fatalf("Put after a wipe on a full disk: %v", err)
	}
	t.Logf("%d messages of 16 KiB stored before the 2 MiB tmpfs filled; first refusal: %v", len(acked), fullErrs[0])
}

// childEnv makes the test binary, re-executed, act as the ingesting child
// of TestSIGKILLDurability.
const childEnv = "HOMENODE_STORE_KILL_CHILD"

// childModeEnv chooses how the child's applier runs: "hold" or "churn".
const childModeEnv = "HOMENODE_STORE_KILL_MODE"

// TestSIGKILLDurability: a child process stores messages and prints each ID
// once Put returned; it is killed with SIGKILL at random moments. After each
// kill the database must open, pass bbolt's consistency check and hold
// every acknowledged message.
func TestSIGKILLDurability(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		ingestUntilKilled(path)
		return
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	path := filepath.Join(t.TempDir(), "kill.db")
	acked := map[channel.MessageID]bool{}
	killedWithAcks, killedWithWAL := 0, 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLDurability$", "-test.count=1")
		// Alternate children that keep every acknowledged message in the
		// WAL (kills land between ack and apply) with children that apply
		// tiny groups constantly (kills land mid-apply and mid-rotation).
		mode := "hold"
		if round%2 == 1 {
			mode = "churn"
		}
		cmd.Env = append(os.Environ(), childEnv+"="+path, childModeEnv+"="+mode)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []channel.MessageID, 1)
		first, eof := make(chan struct{}), make(chan struct{})
		go func() {
			var ids []channel.MessageID
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				b, err := hex.DecodeString(strings.TrimPrefix(sc.Text(), "ack "))
				if strings.HasPrefix(sc.Text(), "ack ") && err == nil && len(b) == 32 {
					ids = append(ids, channel.MessageID(b))
					if len(ids) == 1 {
						close(first)
					}
				}
			}
			lines <- ids
			close(eof)
		}()
		// Kill at a random moment: every fourth child early (perhaps while
		// it opens the file), the others mid-ingest, a random while after
		// their first acknowledgement.
		if round%4 == 3 {
			time.Sleep(time.Duration(mrand.IntN(50)) * time.Millisecond)
		} else {
			select {
			case <-first:
			case <-eof:
				t.Fatalf("round %d: child exited before acknowledging anything", round)
			}
			time.Sleep(time.Duration(mrand.IntN(150)) * time.Millisecond)
		}
		cmd.Process.Kill()
		ids := <-lines
		cmd.Wait()
		if len(ids) > 0 {
			killedWithAcks++
		}
		for _, id := range ids {
			acked[id] = true
		}

		walRecords := 0
		segs, err := loadWAL(path)
		if err != nil {
			t.Fatalf("round %d: WAL after SIGKILL: %v", round, err)
		}
		for _, s := range segs {
			walRecords += len(s.scan.records)
		}
		if walRecords > 0 {
			killedWithWAL++
		}
		db, err := Open(path, Options{Logger: quietLog})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n, seqs := pendingCount(db), segmentsOf(t, path); n != 0 || len(seqs) != 0 {
			t.Fatalf("round %d: after Open %d messages pending, segments %v: the WAL was not applied", round, n, seqs)
		}
		for id := range acked {
			if ok, err := db.Has(id); !ok || err != nil {
				t.Fatalf("round %d: acknowledged %s missing after SIGKILL (%v)", round, id, err)
			}
		}
		s, _ := db.Stats()
		db.Close()
		if s.Messages < len(acked) {
			t.Fatalf("round %d: %d messages stored, %d acknowledged", round, s.Messages, len(acked))
		}
	}
	if killedWithWAL < rounds/4 {
		t.Fatalf("only %d of %d kills left records in the WAL: the replay was hardly tested", killedWithWAL, rounds)
	}
	if killedWithAcks < rounds/2 {
		t.Fatalf("only %d of %d children acknowledged anything before the kill: the test proved little", killedWithAcks, rounds)
	}
	t.Logf("%d rounds, %d acknowledged messages, all present; %d kills left records in the WAL", rounds, len(acked), killedWithWAL)
}

// ingestUntilKilled is the child: several writers, each printing an ID only
// after Put returned. It never exits by itself.
func ingestUntilKilled(path string) {
	if os.Getenv(childModeEnv) == "hold" {
		applyMsgs, applyBytes, applyAge = 1<<30, 1<<30, time.Hour
	} else {
		applyMsgs, applyAge = 16, time.Millisecond
	}
	db, err := Open(path, Options{Logger: quietLog, LockTimeout: 10 * time.Second})
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		os.Exit(2)
	}
	var mu sync.Mutex
	ch := newChannel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				id, err := db.Put(envelope(ch, time.Now().UnixMilli(), 100+mrand.IntN(4000)))
				if err != nil {
					os.Stderr.WriteString("child: " + err.Error() + "\n")
					os.Exit(2)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + id.String() + "\n") // one write(2): in the pipe before the next Put
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
