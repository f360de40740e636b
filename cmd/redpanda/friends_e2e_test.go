package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
)

// statusPairingURI reads the pairing URI from the node's status page, as
// a phone that scanned its QR code would have it.
func statusPairingURI(t *testing.T, n *freshNode) string {
	t.Helper()
	resp, err := http.Get(n.url + "status.json")
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	defer resp.Body.Close()
	var r nodeReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("status.json: %v", err)
	}
	if r.Pairing.URI == "" {
		t.Fatalf("the status page shows no pairing code: %+v", r.Pairing)
	}
	return r.Pairing.URI
}

// peersOf is what `homenode peers --json` lists: the peer IDs connected.
func peersOf(t *testing.T, n *freshNode) []string {
	t.Helper()
	out, err := exec.Command(bins.homenode, "peers", "--json", "--config", "/dev/null", "--admin-socket", n.socket).Output()
	if err != nil {
		t.Fatalf("homenode peers: %v", err)
	}
	var ps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatalf("homenode peers --json: %v\n%s", err, out)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// friendsRun is one run of the two-friends scenario and what it measured.
type friendsRun struct {
	find time.Duration // from Bob's `channel join` until A is among B's peers
	post time.Duration // from Alice's `send` until Bob's running `listen` prints it
}

// twoFriends is issue 18's first field case through the real binaries:
// Alice pairs node A and Bob node B from their status pages; Alice makes a
// channel and shares its key string; Bob joins with that string only (it
// carries A's hint; nothing else tells either node of the other), runs
// `redpanda listen`, and hears what Alice sends.
func twoFriends(t *testing.T) friendsRun {
	a, b := startFreshNode(t), startFreshNode(t)
	alice, _ := newClient(t, "alice")
	bob, _ := newClient(t, "bob")
	rp(t, "pair", statusPairingURI(t, a), "--home", alice)
	rp(t, "pair", statusPairingURI(t, b), "--home", bob)
	rp(t, "channel", "new", "family", "--home", alice)
	key := strings.TrimSpace(rp(t, "channel", "share", "family", "--home", alice))
	_, h, err := channel.ParseKeyHint(key)
	if err != nil {
		t.Fatalf("channel share printed %q: %v", key, err)
	}
	if ns, err := hint.Decode(h); err != nil || len(ns) != 1 || ns[0].ID.String() != a.peerID {
		t.Fatalf("the key string Alice shares names %v (%v); her node is %s", ns, err, a.peerID)
	}
	if slices.Contains(peersOf(t, b), a.peerID) {
		t.Fatal("B is connected to A before Bob joined")
	}

	start := time.Now()
	rp(t, "channel", "join", "fam", key, "--home", bob)
	var run friendsRun
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if slices.Contains(peersOf(t, b), a.peerID) {
			run.find = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never connected to A: B's peers %v", peersOf(t, b))
		}
	}
	listen, errs := startListen(t, "listen", "--json", "--home", bob)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(errs.String(), "connected to"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("listen never connected; stderr:\n%s", errs.String())
		}
	}
	start = time.Now()
	if out := rp(t, "send", "family", "hello Bob, from my node to yours", "--home", alice); !strings.Contains(out, a.peerID) {
		t.Fatalf("send was not made durable by A: %q", out)
	}
	m := listen.message(t)
	run.post = time.Since(start)
	if m.Text != "hello Bob, from my node to yours" || m.Channel != "fam" {
		t.Fatalf("Bob's listen printed %+v", m)
	}
	if !slices.Contains(peersOf(t, a), b.peerID) {
		t.Fatalf("A does not list B among its peers: %v", peersOf(t, a))
	}
	return run
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startListen is start for a redpanda whose stderr is read while it runs.
func startListen(t *testing.T, args ...string) (*proc, *syncBuffer) {
	t.Helper()
	errs := &syncBuffer{}
	p := &proc{cmd: exec.Command(bins.redpanda, args...), lines: make(chan string, 1024), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = errs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("listen stderr:\n%s", errs.String())
		}
	})
	return p, errs
}

// TestFriendsHomeNodesFindEachOther: two friends with a home node each
// hear each other through their nodes, joined by a key string only.
func TestFriendsHomeNodesFindEachOther(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	r := twoFriends(t)
	t.Logf("B found A %s after Bob's join; the post reached Bob's listen %s after Alice's send", r.find, r.post)
}

// TestMeasureFriendsDiscovery prints how long two freshly paired nodes
// that share a channel take to find each other, and a post to reach the
// other home's running app, over REDPANDA_MEASURE_RUNS runs (median and
// worst). It measures; it asserts no time.
//
//	REDPANDA_MEASURE_RUNS=10 go test ./cmd/redpanda -run TestMeasureFriendsDiscovery -v
func TestMeasureFriendsDiscovery(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("REDPANDA_MEASURE_RUNS"))
	if runs <= 0 || testing.Short() {
		t.Skip("set REDPANDA_MEASURE_RUNS=N to measure")
	}
	var finds, posts []time.Duration
	for i := range runs {
		var r friendsRun
		t.Run(strconv.Itoa(i+1), func(t *testing.T) { r = twoFriends(t) })
		if r.find == 0 {
			t.FailNow()
		}
		finds, posts = append(finds, r.find), append(posts, r.post)
	}
	report := func(what string, ds []time.Duration) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		t.Logf("%s: median %s, worst %s over %d runs (all: %v)", what, ds[len(ds)/2].Round(time.Millisecond),
			ds[len(ds)-1].Round(time.Millisecond), len(ds), ds)
	}
	report("nodes find each other (Bob's `channel join` until A is among B's peers)", finds)
	report("post reaches the other home's app (Alice's `send` until Bob's `listen` prints it)", posts)
}
