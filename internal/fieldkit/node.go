package fieldkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Node is a home node: `homenode run` on its own data directory, with
// its libp2p port (TCP and QUIC) and status page port kept across
// restarts, as a box at home keeps its ports, so that clients and friend
// nodes find it again where they knew it.
type Node struct {
	b    *Binaries
	Name string
	Dir  string // data directory
	// Port is the libp2p port (TCP and QUIC-v1 on 127.0.0.1).
	Port int
	// HTTPPort is the status page's port.
	HTTPPort int
	Socket   string // admin socket
	PeerID   string
	// ReadyAt is when the running process logged "ready".
	ReadyAt time.Time
	// Starts counts the processes started on this node.
	Starts int
	extra  []string
	proc   *process
}

// NodeConfig says how to run a node; zero values pick fresh ones.
type NodeConfig struct {
	Name     string   // for messages ("node A")
	Dir      string   // data directory; default a new one under t.TempDir()
	Port     int      // libp2p port; default FreePort
	HTTPPort int      // status page port; default FreePort
	Args     []string // more `homenode run` flags
}

// StartNode runs a node and returns once it is ready. The test's cleanup
// stops it with SIGTERM and expects a clean exit.
func (b *Binaries) StartNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	n := &Node{b: b, Name: cfg.Name, Dir: cfg.Dir, Port: cfg.Port, HTTPPort: cfg.HTTPPort, extra: cfg.Args}
	if n.Name == "" {
		n.Name = "node"
	}
	if n.Dir == "" {
		n.Dir = filepath.Join(t.TempDir(), "node")
	}
	n.Socket = filepath.Join(n.Dir, "admin.sock")
	t.Cleanup(func() {
		if n.proc == nil || n.proc.exited() {
			return
		}
		if err := n.proc.signal(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s: SIGTERM at the end: %v; its output:\n%s", n.Name, err, n.proc.tail(40))
		} else if t.Failed() {
			t.Logf("%s's last output:\n%s", n.Name, n.proc.tail(40))
		}
	})
	// Ports picked here may be taken by another process between the
	// pick and the start (other tests run on this machine): pick again.
	for try := 0; ; try++ {
		if cfg.Port == 0 {
			n.Port = FreePort(t)
		}
		if cfg.HTTPPort == 0 {
			n.HTTPPort = FreePort(t)
		}
		err := n.start()
		if err == nil {
			return n
		}
		if !errors.Is(err, errExited) || !strings.Contains(err.Error(), "is in use") || try == 3 ||
			(cfg.Port != 0 && cfg.HTTPPort != 0) {
			t.Fatal(err)
		}
		t.Logf("%s: a port picked for it was taken meanwhile; picking others", n.Name)
	}
}

// Args are the `homenode run` arguments of this node.
func (n *Node) Args() []string {
	return append([]string{"run", "--config", os.DevNull, "--data-dir", n.Dir,
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.Port),
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", n.Port),
		"--http", fmt.Sprintf("127.0.0.1:%d", n.HTTPPort),
		"--admin-socket", n.Socket, "--set", "upnp=false"}, n.extra...)
}

var (
	readyRe  = regexp.MustCompile(`msg=ready\b`)
	peerIDRe = regexp.MustCompile(`^peer id: (\S+)`)
)

// Start runs the node's process (again, after Stop) and waits until it
// logs "ready".
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
}

func (n *Node) start() error {
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("%s is already running", n.Name)
	}
	p, err := startProcess(n.Name, n.b.Homenode, n.Args()...)
	if err != nil {
		return err
	}
	n.proc = p
	n.Starts++
	l, _, err := p.find("ready", func(l Line) bool { return readyRe.MatchString(l.Text) }, 0)
	if err != nil {
		return err
	}
	n.ReadyAt = l.At
	id, _, err := p.find("its peer ID", func(l Line) bool { return peerIDRe.MatchString(l.Text) }, 0)
	if err != nil {
		return err
	}
	n.PeerID = peerIDRe.FindStringSubmatch(id.Text)[1]
	return nil
}

// Stop sends sig (SIGTERM, SIGKILL, ...) and waits for the process to
// end. After SIGTERM the node must exit with status 0.
func (n *Node) Stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	err := n.proc.signal(t, sig)
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("%s after SIGTERM: %v; its output:\n%s", n.Name, err, n.proc.tail(40))
	}
}

// Running reports whether the node's process is running.
func (n *Node) Running() bool { return n.proc != nil && !n.proc.exited() }

// Addr is the node's TCP multiaddr with its peer ID.
func (n *Node) Addr() string {
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", n.Port, n.PeerID)
}

// URL is the status page.
func (n *Node) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort) }

// Mark is a place in the running process's output: WaitLog(re, mark)
// looks only after it.
func (n *Node) Mark() int { return n.proc.mark() }

// WaitLog waits until the running process prints a line matching re
// after mark, and returns it.
func (n *Node) WaitLog(t testing.TB, re *regexp.Regexp, mark int) Line {
	t.Helper()
	l, _ := n.proc.waitLine(t, re, mark)
	return l
}

// LogSince returns what the running process printed after mark.
func (n *Node) LogSince(mark int) []Line { return n.proc.since(mark) }

// Tail is the last lines the running process printed, for failure
// reports.
func (n *Node) Tail(lines int) string { return n.proc.tail(lines) }

// Admin runs an admin command (`homenode status`, `users`, ...) against
// this node's socket and returns its stdout.
func (n *Node) Admin(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := n.TryAdmin(args...)
	if err != nil {
		t.Fatalf("homenode %s (%s): %v\n%s%s", strings.Join(args, " "), n.Name, err, out, errOut)
	}
	return out
}

// TryAdmin is Admin that returns the error.
func (n *Node) TryAdmin(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(n.b.Homenode, append(args, "--config", os.DevNull, "--admin-socket", n.Socket)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Status is the part of `homenode status --json` (the status page's
// /status.json) these tests read.
type Status struct {
	Node struct {
		PeerID    string   `json:"peer_id"`
		Addresses []string `json:"addresses"`
	} `json:"node"`
	Pairing struct {
		State string `json:"state"`
		URI   string `json:"uri"`
		Owner string `json:"owner"`
	} `json:"pairing"`
	Peers struct {
		Count int `json:"count"`
		List  []struct {
			ID string `json:"id"`
		} `json:"list"`
	} `json:"peers"`
	Channels []ChannelStatus `json:"channels"`
}

// ChannelStatus is one channel a node serves.
type ChannelStatus struct {
	ID       string    `json:"id"`
	Messages int64     `json:"messages"`
	Newest   time.Time `json:"newest"`
	Control  bool      `json:"control"`
}

// Status is `homenode status --json`.
func (n *Node) Status(t testing.TB) Status {
	t.Helper()
	var s Status
	if err := json.Unmarshal([]byte(n.Admin(t, "status", "--json")), &s); err != nil {
		t.Fatalf("homenode status --json (%s): %v", n.Name, err)
	}
	return s
}

// User is one line of `homenode users --json`.
type User struct {
	Identity string `json:"identity"`
	Hop      int    `json:"hop"`
	Sponsor  string `json:"sponsor"`
}

// Users is `homenode users --json`: the registered users.
func (n *Node) Users(t testing.TB) []User {
	t.Helper()
	var us []User
	if err := json.Unmarshal([]byte(n.Admin(t, "users", "--json")), &us); err != nil {
		t.Fatalf("homenode users --json (%s): %v", n.Name, err)
	}
	return us
}

// Peers is `homenode peers --json`: the connected peers' IDs.
func (n *Node) Peers(t testing.TB) []string {
	t.Helper()
	var ps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(n.Admin(t, "peers", "--json")), &ps); err != nil {
		t.Fatalf("homenode peers --json (%s): %v", n.Name, err)
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// Get fetches a path of the status page and returns its body and
// content type; anything but 200 fails the test.
func (n *Node) Get(t testing.TB, path string) ([]byte, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	res, err := c.Get(n.URL() + strings.TrimPrefix(path, "/"))
	if err != nil {
		t.Fatalf("GET %s%s: %v", n.URL(), path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s%s: %v", n.URL(), path, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %s: %s", n.URL(), path, res.Status, body)
	}
	return body, res.Header.Get("Content-Type")
}

// ErrNoZbarimg is returned by PairingFromQR where zbarimg is not
// installed (Debian: zbar-tools; scripts/install-test-deps.sh).
var ErrNoZbarimg = errors.New("zbarimg is not installed (apt install zbar-tools, or make test-deps)")

// PairingFromQR reads the pairing code as a phone does: it fetches the
// status page's QR code (/pair.png) and decodes it with zbarimg. It also
// checks that the page's /status.json carries the same code. Without
// zbarimg it returns /status.json's code and ErrNoZbarimg.
func (n *Node) PairingFromQR(t testing.TB) (string, error) {
	t.Helper()
	var st Status
	body, _ := n.Get(t, "/status.json")
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("%s: /status.json: %v", n.Name, err)
	}
	if st.Pairing.State != "waiting" || st.Pairing.URI == "" {
		t.Fatalf("%s is not waiting for pairing: %+v", n.Name, st.Pairing)
	}
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		return st.Pairing.URI, ErrNoZbarimg
	}
	png, ctype := n.Get(t, "/pair.png")
	if ctype != "image/png" {
		t.Fatalf("%s: /pair.png is %q", n.Name, ctype)
	}
	file := filepath.Join(t.TempDir(), "pair.png")
	if err := os.WriteFile(file, png, 0o600); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	cmd := exec.Command(zbar, "-q", "--raw", file)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("zbarimg %s (%s's /pair.png): %v\n%s", file, n.Name, err, e.String())
	}
	uri := strings.TrimSpace(o.String())
	if uri != st.Pairing.URI {
		t.Fatalf("%s: the QR code holds %q, /status.json says %q", n.Name, uri, st.Pairing.URI)
	}
	return uri, nil
}

// Holds waits until the node stores a message of the channel (hex ID) at
// least as new as at: the node has it, whoever brought it.
func (n *Node) Holds(t testing.TB, channelID string, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		for _, c := range n.Status(t).Channels {
			if c.ID == channelID && !c.Newest.Before(at.Truncate(time.Millisecond)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds no message of channel %s from %v on within %v", n.Name, channelID, at, Patience)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
