package main

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// TestSecondNodeOnABusyPortRefusesToStart runs two real homenode
// processes with their own data directories. The second one, given a
// libp2p port, status page port or admin socket the first one holds,
// exits with status 1 before saying ready, naming what is busy and the
// first node's pid; the first one keeps its ports alone.
func TestSecondNodeOnABusyPortRefusesToStart(t *testing.T) {
	p2pPort, httpPort := testkit.FreePort(t), testkit.FreePort(t)
	tcp := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2pPort)
	quic := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p2pPort)
	http := fmt.Sprintf("127.0.0.1:%d", httpPort)
	first := startDaemon(t, t.TempDir(), nil, "--listen", tcp, "--listen", quic, "--http", http)
	pid := "pid " + strconv.Itoa(first.cmd.Process.Pid) + " (homenode run"

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"tcp and quic", []string{"--listen", tcp, "--listen", quic},
			[]string{tcp, quic, fmt.Sprintf("port %d/tcp is in use by %s", p2pPort, pid), fmt.Sprintf("port %d/udp is in use by %s", p2pPort, pid)}},
		{"quic", []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", quic},
			[]string{quic, fmt.Sprintf("port %d/udp is in use by %s", p2pPort, pid)}},
		{"status page", []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--http", http},
			[]string{"status page", fmt.Sprintf("port %d/tcp is in use by %s", httpPort, pid)}},
		{"admin socket", []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--admin-socket", first.socket},
			[]string{"admin socket", first.socket, "is held by " + pid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"run", "--config", "/dev/null", "--data-dir", dir, "--set", "upnp=false",
				"--http", "127.0.0.1:0", "--admin-socket", filepath.Join(dir, "admin.sock")}
			out, e, err := homenode(t, "", append(args, tc.args...)...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("second node: %v, want exit status 1\nstdout: %s\nstderr: %s", err, out, e)
			}
			if strings.Contains(e, "msg=ready") || strings.Contains(out, "peer id:") {
				t.Errorf("the second node said it was ready:\n%s%s", out, e)
			}
			for _, w := range tc.want {
				if !strings.Contains(e, w) {
					t.Errorf("stderr does not say %q:\n%s", w, e)
				}
			}
		})
	}

	// The first node still answers on its socket and stops cleanly.
	if _, e, err := homenode(t, "", "status", "--config", "/dev/null", "--admin-socket", first.socket); err != nil {
		t.Fatalf("first node after the attempts: %v %s", err, e)
	}
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
}
