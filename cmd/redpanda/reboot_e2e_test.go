package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// nodeRun is one `homenode run` process on a data directory and a fixed
// port, so that it can be stopped and started again where its clients
// know it.
type nodeRun struct {
	cmd     *exec.Cmd
	addr    string    // multiaddr with /p2p
	uri     string    // pairing URI, while waiting for pairing
	readyAt time.Time // when its "ready" log line arrived
	done    chan struct{}
	mu      sync.Mutex
	logs    bytes.Buffer // stderr
}

func (n *nodeRun) log() string { n.mu.Lock(); defer n.mu.Unlock(); return n.logs.String() }

// runNode starts the real daemon on dir, listening on 127.0.0.1:port, and
// returns once it logged "ready".
func runNode(t *testing.T, dir string, port int) *nodeRun {
	t.Helper()
	n := &nodeRun{done: make(chan struct{})}
	n.cmd = exec.Command(bins.homenode, "run", "--config", "/dev/null", "--data-dir", dir,
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), "--http", "127.0.0.1:0", "--set", "upnp=false",
		"--admin-socket", filepath.Join(dir, "admin.sock"))
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan time.Time, 1)
	out := make(chan string, 64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, "msg=ready") {
				select {
				case ready <- time.Now():
				default:
				}
			}
			n.mu.Lock()
			n.logs.WriteString(l + "\n")
			n.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(t, syscall.SIGTERM) })
	deadline := time.After(60 * time.Second)
	for n.readyAt.IsZero() {
		select {
		case l := <-out:
			switch {
			case strings.HasPrefix(l, "address: ") && n.addr == "":
				n.addr = strings.TrimPrefix(l, "address: ")
			case strings.HasPrefix(l, provisioning.URIScheme):
				n.uri = strings.TrimSpace(l)
			}
		case at := <-ready:
			n.readyAt = at
		case <-n.done:
			t.Fatalf("homenode exited before it was ready; stderr:\n%s", n.log())
		case <-deadline:
			t.Fatalf("homenode not ready within 60 s; stderr:\n%s", n.log())
		}
	}
	// The address is printed before "ready"; drain what is left.
	for n.addr == "" {
		select {
		case l := <-out:
			if strings.HasPrefix(l, "address: ") {
				n.addr = strings.TrimPrefix(l, "address: ")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("homenode printed no address")
		}
	}
	return n
}

// stop sends sig and waits for the process to end.
func (n *nodeRun) stop(t *testing.T, sig syscall.Signal) {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Errorf("homenode ignored %v for 30 s", sig)
	}
}

// usersOf is `homenode users --json`: identity -> hop.
func usersOf(t *testing.T, dir string) map[string]int {
	t.Helper()
	out, err := exec.Command(bins.homenode, "users", "--json", "--config", "/dev/null",
		"--admin-socket", filepath.Join(dir, "admin.sock")).Output()
	if err != nil {
		t.Fatalf("homenode users: %v", err)
	}
	var us []struct {
		Identity string `json:"identity"`
		Hop      int    `json:"hop"`
	}
	if err := json.Unmarshal(out, &us); err != nil {
		t.Fatalf("homenode users --json: %v\n%s", err, out)
	}
	m := map[string]int{}
	for _, u := range us {
		m[u.Identity] = u.Hop
	}
	return m
}

// heard waits for the listener to print text and returns when it did.
func (p *proc) heard(t *testing.T, text string) time.Time {
	t.Helper()
	for {
		m := p.message(t)
		if m.Text == text {
			return time.Now()
		}
	}
}

// TestFriendHearsAcrossNodeRestarts: a node paired from its console's
// pairing code (no --owner), its owner and a friend with the owner's
// ticket; the friend's `redpanda listen` runs throughout. The node is
// stopped with SIGTERM and started again, then killed with SIGKILL and
// started again: each time `homenode users` still lists both, the node's
// log drops no registration, and the friend hears what the owner posts
// once the node is back.
//
// It prints, for each restart, how long after the node's "ready" line
// the friend's app heard a post sent at that moment. REBOOT_ROUNDS=N
// repeats the two restarts N times and REBOOT_DOWN=DURATION keeps the
// node down that long each time, for figures:
//
//	REBOOT_ROUNDS=10 go test -run TestFriendHearsAcrossNodeRestarts -v ./cmd/redpanda
func TestFriendHearsAcrossNodeRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	rounds, down := 1, time.Duration(0)
	if s := os.Getenv("REBOOT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("REBOOT_ROUNDS=%q", s)
		}
		rounds = n
	}
	if s := os.Getenv("REBOOT_DOWN"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("REBOOT_DOWN=%q: %v", s, err)
		}
		down = d
	}
	dir, port := filepath.Join(t.TempDir(), "node"), testkit.FreePort(t)
	n := runNode(t, dir, port)
	if n.uri == "" {
		t.Fatal("a new node printed no pairing code")
	}
	alice, aliceID := newClient(t, "alice")
	bob, bobID := newClient(t, "bob")
	rp(t, "pair", n.uri, "--home", alice)
	key := strings.TrimSpace(rp(t, "channel", "new", "fam", "--home", alice))
	rp(t, "channel", "join", "fam", key, "--home", bob)
	rp(t, "ticket", "set", strings.TrimSpace(rp(t, "ticket", "issue", bobID, "--home", alice)), "--home", bob)
	rp(t, "nodes", "add", n.addr, "--home", bob)
	listen := start(t, bins.redpanda, "listen", "--json", "--home", bob)
	rp(t, "send", "fam", "before any restart", "--home", alice)
	listen.heard(t, "before any restart")
	want := map[string]int{aliceID: 0, bobID: 1}
	if got := usersOf(t, dir); !mapsEqual(got, want) {
		t.Fatalf("homenode users before the restarts: %v, want %v", got, want)
	}

	took := map[string][]time.Duration{}
	for round := range rounds {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			n.stop(t, sig)
			time.Sleep(down)
			n = runNode(t, dir, port)
			// Posted the moment the node is ready, by a fresh process as
			// a person would; the friend's app, running all along, hears
			// it once it has its session back.
			text := fmt.Sprintf("after %v, round %d", sig, round)
			type result struct {
				at  time.Time
				err error
				out string
			}
			sent := make(chan result, 1)
			go func() {
				o, e, err := rpTry("send", "fam", text, "--home", alice)
				sent <- result{time.Now(), err, o + e}
			}()
			at := listen.heard(t, text)
			s := <-sent
			if s.err != nil {
				t.Fatalf("send after %v: %v\n%s", sig, s.err, s.out)
			}
			heard := at.Sub(n.readyAt)
			took[sig.String()] = append(took[sig.String()], heard)
			t.Logf("%v round %d (down %v): heard %v after ready; the sender's own command took %v of it",
				sig, round, down, heard.Round(time.Millisecond), s.at.Sub(n.readyAt).Round(time.Millisecond))
			if got := usersOf(t, dir); !mapsEqual(got, want) {
				t.Fatalf("homenode users after %v: %v, want %v", sig, got, want)
			}
			if strings.Contains(n.log(), "registration dropped") {
				t.Fatalf("the node dropped a registration after %v:\n%s", sig, n.log())
			}
		}
	}
	for _, sig := range []string{syscall.SIGTERM.String(), syscall.SIGKILL.String()} {
		d := slices.Clone(took[sig])
		slices.Sort(d)
		median := (d[(len(d)-1)/2] + d[len(d)/2]) / 2
		t.Logf("%s: %d restarts, ready -> heard median %v, worst %v", sig, len(d),
			median.Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
