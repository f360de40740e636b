package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/provisioning"
)

// freshNode is a `homenode run` on a fresh data directory, waiting for
// pairing.
type freshNode struct {
	cmd    *exec.Cmd
	dir    string
	socket string
	peerID string
	addr   string        // multiaddr with /p2p
	uri    string        // the RPPAIR1: line of its console
	url    string        // its status page
	done   chan struct{} // closed once the process has exited
	err    error         // its exit error, set before done closes
}

var statusURL = regexp.MustCompile(`status page.*url=(http://[^ ]+)`)

// startFreshNode runs the real daemon on loopback with its status page on
// an ephemeral port, and waits until it has printed its peer ID, address
// and pairing URI and logged its status page address.
func startFreshNode(t *testing.T) *freshNode {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	n := &freshNode{dir: dir, socket: filepath.Join(dir, "admin.sock"), done: make(chan struct{})}
	n.cmd = exec.Command(bins.homenode, "run", "--config", "/dev/null", "--data-dir", dir,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--set", "upnp=false")
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
	var logs bytes.Buffer // stderr, for failure reports; read only after done
	lines := make(chan string, 256)
	scan := func(r io.Reader, keep *bytes.Buffer) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if keep != nil {
				keep.WriteString(sc.Text() + "\n")
			}
			select {
			case lines <- sc.Text():
			default: // nobody reads once the node is up
			}
		}
	}
	eof := make(chan struct{}, 2)
	go func() { scan(stdout, nil); eof <- struct{}{} }()
	go func() { scan(stderr, &logs); eof <- struct{}{} }()
	go func() { <-eof; <-eof; n.err = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
			t.Error("homenode ignored SIGTERM for 30 s")
		}
		if t.Failed() {
			t.Logf("homenode stderr:\n%s", logs.String())
		}
	})
	timeout := time.After(60 * time.Second)
	for n.peerID == "" || n.addr == "" || n.uri == "" || n.url == "" {
		select {
		case l := <-lines:
			switch {
			case strings.HasPrefix(l, "peer id: "):
				n.peerID = strings.TrimPrefix(l, "peer id: ")
			case strings.HasPrefix(l, "address: ") && n.addr == "":
				n.addr = strings.TrimPrefix(l, "address: ")
			case strings.HasPrefix(l, provisioning.URIScheme):
				n.uri = strings.TrimSpace(l)
			default:
				if m := statusURL.FindStringSubmatch(l); m != nil {
					n.url = m[1]
				}
			}
		case <-n.done:
			t.Fatalf("homenode exited before it was ready: %v", n.err)
		case <-timeout:
			t.Fatalf("homenode not ready within 60 s: peer %q addr %q uri %q url %q", n.peerID, n.addr, n.uri, n.url)
		}
	}
	return n
}

// status is `homenode status --json` through the admin socket.
func (n *freshNode) status(t *testing.T) nodeReport {
	t.Helper()
	out, err := exec.Command(bins.homenode, "status", "--json", "--config", "/dev/null", "--admin-socket", n.socket).Output()
	if err != nil {
		t.Fatalf("homenode status: %v", err)
	}
	var r nodeReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("homenode status --json: %v\n%s", err, out)
	}
	return r
}

// nodeReport is the part of the status report these tests read.
type nodeReport struct {
	Node struct {
		PeerID string `json:"peer_id"`
	} `json:"node"`
	Pairing struct {
		State string `json:"state"`
		URI   string `json:"uri"`
		Owner string `json:"owner"`
	} `json:"pairing"`
	Messages struct {
		Count int64 `json:"count"`
	} `json:"messages"`
}

// rpTry runs the redpanda binary and returns its output and exit error.
func rpTry(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.Command(bins.redpanda, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func newClient(t *testing.T, name string) (home, id string) {
	t.Helper()
	home = filepath.Join(t.TempDir(), name)
	rp(t, "init", "--home", home)
	return home, strings.TrimSpace(rp(t, "id", "--home", home))
}

// screenshotQR opens url in headless Chromium, saves a screenshot named
// name in dir and returns the QR code zbarimg decodes from it, if any.
func screenshotQR(t *testing.T, url, dir, name string) (string, bool) {
	t.Helper()
	shot := filepath.Join(dir, name)
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(t.TempDir(), "chromium"), "--screenshot="+shot, "--window-size=800,1000", url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	t.Logf("status page screenshot: %s", shot)
	out, err := exec.Command("zbarimg", "-q", shot).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 4 { // zbarimg: no symbol found
		return "", false
	}
	if err != nil {
		t.Fatalf("zbarimg %s: %v", shot, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, "QR-Code:"); ok {
			return strings.TrimSpace(s), true
		}
	}
	t.Fatalf("zbarimg found no QR code in %s: %q", shot, out)
	return "", false
}

// TestPairAsANewOwner is issue 7's first test, as a new owner does it: a
// fresh `homenode run`; its status page in headless Chromium; the QR
// code in the screenshot decoded with zbarimg; `redpanda pair` with what
// it holds. The node is then owned by that client and serves it: the
// client registers, and its message is stored and relayed to a friend
// with the owner's ticket.
func TestPairAsANewOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	for _, tool := range []string{"chromium", "zbarimg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: apt install chromium zbar-tools); the status-page QR test needs it", tool)
		}
	}
	n := startFreshNode(t)
	uri, ok := screenshotQR(t, n.url, t.ArtifactDir(), "status-page.png")
	if !ok || uri != n.uri {
		t.Fatalf("QR code on the status page holds %q; the console shows %q", uri, n.uri)
	}

	alice, aliceID := newClient(t, "alice")
	key := strings.TrimSpace(rp(t, "channel", "new", "fam", "--home", alice))
	var res pairResult
	if err := json.Unmarshal([]byte(rp(t, "pair", uri, "--json", "--home", alice)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Node != n.peerID || res.Owner != aliceID || res.Hop != 0 || res.Channels != 1 {
		t.Fatalf("pair printed %+v; node %s, alice %s", res, n.peerID, aliceID)
	}
	if r := n.status(t); r.Pairing.State != "owned" || r.Pairing.Owner != aliceID || r.Pairing.URI != "" {
		t.Fatalf("after pairing the node reports %+v", r.Pairing)
	}
	var own nodeReport
	if err := json.Unmarshal([]byte(rp(t, "node", "status", "--json", "--home", alice)), &own); err != nil {
		t.Fatal(err)
	}
	if own.Node.PeerID != n.peerID || own.Pairing.Owner != aliceID {
		t.Fatalf("node status over the owner protocol: %+v", own)
	}
	if code, ok := screenshotQR(t, n.url, t.ArtifactDir(), "status-page-owned.png"); ok {
		t.Fatalf("the status page still shows a QR code (%q) after pairing", code)
	}

	// Bob, with the owner's ticket, hears what Alice posts through it.
	bob, bobID := newClient(t, "bob")
	rp(t, "channel", "join", "family", key, "--home", bob)
	rp(t, "ticket", "set", strings.TrimSpace(rp(t, "ticket", "issue", bobID, "--home", alice)), "--home", bob)
	rp(t, "nodes", "add", n.addr, "--home", bob)
	listen := start(t, bins.redpanda, "listen", "--json", "--home", bob)
	if out := rp(t, "send", "fam", "hello from the new owner", "--home", alice); !strings.Contains(out, n.peerID) {
		t.Fatalf("send was not made durable by the paired node: %q", out)
	}
	m := listen.message(t)
	if m.Text != "hello from the new owner" || m.Author != aliceID {
		t.Fatalf("Bob got %+v", m)
	}
	if r := n.status(t); r.Messages.Count < 1 {
		t.Fatalf("the node stores %d messages", r.Messages.Count)
	}
}

// TestPairRefusalsAndReset: pairing codes that cannot work fail with a
// message saying why (not a code, a wrong token, an unreachable node, a
// token already used); after `homenode reset --yes` the old owner's
// `node status` is refused and a new owner pairs with the new code.
func TestPairRefusalsAndReset(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	n := startFreshNode(t)
	alice, aliceID := newClient(t, "alice")
	carol, carolID := newClient(t, "carol")
	u, err := provisioning.ParseURI(n.uri)
	if err != nil {
		t.Fatal(err)
	}
	wrong := u
	if _, err := rand.Read(wrong.Token[:]); err != nil {
		t.Fatal(err)
	}
	closed := u
	closed.Addrs = []provisioning.Addr{{Transport: provisioning.TCP, AddrPort: netip.MustParseAddrPort("127.0.0.1:1")}}

	for _, tc := range []struct {
		name, uri, want string
	}{
		{"not a pairing code", "https://example.com/pair", "not a redPanda pairing code"},
		{"bad base32", strings.Replace(n.uri, "/", "/1", 1), "not a redPanda pairing code"},
		{"wrong token", wrong.String(), "refused this pairing code"},
		{"unreachable node", closed.String(), "cannot reach node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e, err := rpTry("pair", tc.uri, "--home", alice)
			if err == nil || !strings.Contains(e, tc.want) {
				t.Fatalf("pair %s: %v, stderr %q; want an error saying %q", tc.uri, err, e, tc.want)
			}
		})
	}
	if r := n.status(t); r.Pairing.State != "waiting" || r.Pairing.URI != n.uri {
		t.Fatalf("after refused attempts the node reports %+v; want still waiting with the same code", r.Pairing)
	}

	rp(t, "pair", n.uri, "--home", alice)
	if _, e, err := rpTry("pair", n.uri, "--home", carol); err == nil || !strings.Contains(e, "already has an owner") {
		t.Fatalf("the same code a second time, by another client: %v %q", err, e)
	}
	if r := n.status(t); r.Pairing.Owner != aliceID {
		t.Fatalf("owner after a second attempt: %+v", r.Pairing)
	}
	if _, e, err := rpTry("node", "status", "--home", carol); err == nil || !strings.Contains(e, "pair one first") {
		t.Fatalf("node status of a client that owns nothing: %v %q", err, e)
	}

	if out, err := exec.Command(bins.homenode, "reset", "--yes", "--config", "/dev/null", "--admin-socket", n.socket).CombinedOutput(); err != nil {
		t.Fatalf("homenode reset: %v\n%s", err, out)
	}
	if _, e, err := rpTry("node", "status", "--home", alice); err == nil || !strings.Contains(e, "is not its owner") {
		t.Fatalf("the old owner's node status after a reset: %v %q", err, e)
	}
	r := n.status(t)
	if r.Pairing.State != "waiting" || r.Pairing.URI == "" || r.Pairing.URI == n.uri {
		t.Fatalf("after reset the node reports %+v; want waiting with a new code", r.Pairing)
	}
	if _, e, err := rpTry("pair", n.uri, "--home", carol); err == nil || !strings.Contains(e, "refused this pairing code") {
		t.Fatalf("the code from before the reset: %v %q", err, e)
	}
	rp(t, "pair", r.Pairing.URI, "--home", carol)
	var own nodeReport
	if err := json.Unmarshal([]byte(rp(t, "node", "status", "--json", "--home", carol)), &own); err != nil {
		t.Fatal(err)
	}
	if own.Pairing.State != "owned" || own.Pairing.Owner != carolID {
		t.Fatalf("the new owner's node status: %+v", own.Pairing)
	}
}
