package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/status"
)

// binary is the real homenode, built once for the tests that start it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "homenode-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "homenode")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building homenode: %v\n%s", err, out)
		os.Exit(1)
	}
	testkit.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// daemon is a running homenode process.
type daemon struct {
	cmd     *exec.Cmd
	dataDir string
	socket  string
	peerID  string
	addr    string
	uri     string
	stderr  *bytes.Buffer
	exited  chan error
}

// startDaemon runs `homenode run` on loopback with its own data directory
// and waits until it prints its peer ID.
func startDaemon(t *testing.T, dataDir string, env []string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{dataDir: dataDir, socket: filepath.Join(dataDir, "admin.sock"), stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	args := append([]string{"run", "--config", "/dev/null", "--data-dir", dataDir,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--set", "upnp=false"}, extra...)
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("homenode stderr:\n%s", d.stderr)
		}
	})
	timeout := time.After(30 * time.Second)
	for d.addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("homenode exited before it was ready: %v\n%s", <-d.exited, d.stderr)
			}
			switch {
			case strings.HasPrefix(l, "peer id: "):
				d.peerID = strings.TrimPrefix(l, "peer id: ")
			case strings.HasPrefix(l, "address: "):
				d.addr = strings.TrimPrefix(l, "address: ")
			case strings.HasPrefix(l, "RPPAIR1:"):
				d.uri = l
			}
		case <-timeout:
			t.Fatalf("homenode printed no address within 30 s\n%s", d.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return d
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (d *daemon) stop(t *testing.T) error {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("homenode did not stop within 30 s of SIGTERM")
		return nil
	}
}

// homenode runs a subcommand of the real binary.
func homenode(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// notifySocket is a unixgram socket playing systemd's notify socket.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	conn, path := testkit.NotifySocket(t)
	msgs := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					msgs <- line
				}
			}
		}
	}()
	return path, msgs
}

// waitFor reads notify messages until one has the prefix.
func waitFor(t *testing.T, msgs <-chan string, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %s", prefix)
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %s", prefix, within)
		}
	}
}

// quietFor reports whether no message with prefix arrives for d.
func quietFor(msgs <-chan string, prefix string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m, prefix) {
				return false
			}
		case <-deadline:
			return true
		}
	}
}

func TestSystemdNotifyAndWatchdog(t *testing.T) {
	sock, msgs := notifySocket(t)
	wedge := filepath.Join(t.TempDir(), "wedge")
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, []string{
		"NOTIFY_SOCKET=" + sock,
		"WATCHDOG_USEC=2000000", // ping every second
		"REDPANDA_TEST_WEDGE_FILE=" + wedge,
	})
	waitFor(t, msgs, "READY=1", 20*time.Second)
	st := waitFor(t, msgs, "STATUS=", 20*time.Second)
	if !strings.Contains(st, "waiting for pairing") {
		t.Errorf("STATUS line %q does not say the node waits for pairing", st)
	}
	waitFor(t, msgs, "WATCHDOG=1", 5*time.Second)
	waitFor(t, msgs, "WATCHDOG=1", 5*time.Second)

	// Wedge the main loop: the health check fails and pings stop.
	if err := os.WriteFile(wedge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stoppedPinging := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if quietFor(msgs, "WATCHDOG=1", 3*time.Second) {
			stoppedPinging = true
			break
		}
	}
	if !stoppedPinging {
		t.Fatal("watchdog pings went on while the main loop was wedged")
	}
	os.Remove(wedge)
	waitFor(t, msgs, "WATCHDOG=1", 10*time.Second)

	if err := d.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	waitFor(t, msgs, "STOPPING=1", time.Second)
	if !strings.Contains(d.stderr.String(), "stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", d.stderr)
	}
	db, err := store.Open(filepath.Join(dataDir, node.StoreFile), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("store does not reopen after the stop: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestWithoutSystemdNothingBreaks(t *testing.T) {
	env := []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC="}
	d := startDaemon(t, t.TempDir(), env)
	if d.uri == "" {
		t.Error("a new node in a terminal printed no pairing URI")
	}
	if err := d.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestAdminSubcommands(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	sock := "--admin-socket=" + d.socket
	cfgArgs := []string{"--config", "/dev/null", sock}

	out, errOut, err := homenode(t, "", append([]string{"status"}, cfgArgs...)...)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, d.peerID) || !strings.Contains(out, "waiting") {
		t.Errorf("status output lacks peer ID or pairing state:\n%s", out)
	}
	out, _, err = homenode(t, "", append([]string{"status", "--json"}, cfgArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	var r status.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json is not a report: %v\n%s", err, out)
	}
	if r.Node.PeerID != d.peerID || r.Pairing.State != status.PairingWaiting || r.Pairing.URI == "" {
		t.Errorf("status --json = %+v", r)
	}

	ch := strings.Repeat("ab", 32)
	if out, e, err := homenode(t, "", append([]string{"block", ch}, cfgArgs...)...); err != nil || !strings.Contains(out, "blocked") {
		t.Fatalf("block: %v %s %s", err, out, e)
	}
	out, _, _ = homenode(t, "", append([]string{"channels", "--json"}, cfgArgs...)...)
	var chans []status.Channel
	if err := json.Unmarshal([]byte(out), &chans); err != nil || len(chans) != 1 || chans[0].ID != ch || !chans[0].Blocked {
		t.Fatalf("channels after block: %v %s", err, out)
	}
	if _, _, err := homenode(t, "", append([]string{"unblock", ch}, cfgArgs...)...); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	_, e, err := homenode(t, "", append([]string{"unblock", ch}, cfgArgs...)...)
	if err == nil || !strings.Contains(e, "not blocked") {
		t.Errorf("unblocking twice: %v %q", err, e)
	}
	for _, cmd := range []string{"peers", "users", "channels"} {
		if _, e, err := homenode(t, "", append([]string{cmd}, cfgArgs...)...); err != nil {
			t.Errorf("%s: %v %s", cmd, err, e)
		}
	}

	// Misuse: clear errors and exit status 2 for usage mistakes.
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"block"}, "exactly one argument", 2},
		{[]string{"block", "not-a-channel"}, "neither a channel ID", 1},
		{[]string{"revoke", "rpiNOPE"}, "", 1},
		{[]string{"frobnicate"}, "unknown command", 2},
		{[]string{"status", "--set", "nosuchkey=1"}, "no setting", 2},
	} {
		_, e, err := homenode(t, "", append(tc.args, cfgArgs...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("homenode %v: err %v, stderr %q; want exit %d mentioning %q", tc.args, err, e, tc.code, tc.want)
		}
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	_, e, err = homenode(t, "", append([]string{"status"}, cfgArgs...)...)
	if err == nil || !strings.Contains(e, "is homenode running") {
		t.Errorf("status with no node: %v %q", err, e)
	}
}

func TestResetGivesANewPairingToken(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, nil)
	first := d.uri
	// Online reset through the admin socket needs confirmation.
	_, e, err := homenode(t, "no\n", "reset", "--config", "/dev/null", "--admin-socket", d.socket)
	if err == nil || !strings.Contains(e, "not confirmed") {
		t.Fatalf("unconfirmed reset: %v %q", err, e)
	}
	if out, e, err := homenode(t, "reset\n", "reset", "--config", "/dev/null", "--admin-socket", d.socket); err != nil {
		t.Fatalf("reset: %v %s %s", err, out, e)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	// Offline reset with a new identity.
	if out, e, err := homenode(t, "", "reset", "--yes", "--new-identity", "--config", "/dev/null", "--data-dir", dataDir, "--admin-socket", filepath.Join(dataDir, "none.sock")); err != nil {
		t.Fatalf("offline reset: %v %s %s", err, out, e)
	}
	d2 := startDaemon(t, dataDir, nil)
	if d2.uri == "" || d2.uri == first {
		t.Fatalf("after reset the URI is %q (before: %q); want a new one", d2.uri, first)
	}
	if d2.peerID == d.peerID {
		t.Fatal("--new-identity kept the old peer ID")
	}
	d2.stop(t)
	_ = context.Background
}
