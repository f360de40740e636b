package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// holdEnv makes the test binary a helper process that holds a port:
// "tcp:HOST:PORT:reuseport", "tcp:HOST:PORT" or "udp:HOST:PORT". It
// prints "holding" and sleeps until killed.
const holdEnv = "P2P_TEST_HOLD_PORT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdEnv); spec != "" {
		holdPort(spec)
		return
	}
	testkit.VerifyTestMain(m)
}

func holdPort(spec string) {
	network, rest, _ := strings.Cut(spec, ":")
	addr, reuse := strings.CutSuffix(rest, ":reuseport")
	lc := net.ListenConfig{}
	if reuse {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	var err error
	if network == "tcp" {
		_, err = lc.Listen(context.Background(), "tcp4", addr)
	} else {
		_, err = lc.ListenPacket(context.Background(), "udp4", addr)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	time.Sleep(time.Hour)
}

// holder starts a helper process holding spec's port and returns its pid.
func holder(t *testing.T, spec string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "holding\n" {
		t.Fatalf("helper holding %s: %q", spec, line)
	}
	return cmd.Process.Pid
}

// TestPortInUseIsAnError: a port another process holds (TCP, with or
// without SO_REUSEPORT, or UDP for QUIC) stops New with an error that
// names the address, the port and the holder's pid.
func TestPortInUseIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name, hold, listen, port string
	}{
		{"tcp", "tcp:127.0.0.1:%d", "/ip4/127.0.0.1/tcp/%d", "%d/tcp"},
		{"tcp reuseport", "tcp:127.0.0.1:%d:reuseport", "/ip4/127.0.0.1/tcp/%d", "%d/tcp"},
		{"tcp wildcard", "tcp:0.0.0.0:%d:reuseport", "/ip4/127.0.0.1/tcp/%d", "%d/tcp"},
		{"quic", "udp:127.0.0.1:%d", "/ip4/127.0.0.1/udp/%d/quic-v1", "%d/udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := testkit.FreePort(t)
			pid := holder(t, fmt.Sprintf(tc.hold, port))
			listen := fmt.Sprintf(tc.listen, port)
			// The other listener is free: the error must still name the
			// one that is not.
			_, err := New(Config{DataDir: t.TempDir(), Logger: quiet,
				ListenAddrs: []string{listen, "/ip4/127.0.0.1/tcp/0"}})
			if err == nil {
				t.Fatal("New succeeded on a port in use")
			}
			var le *ListenError
			if !errors.Is(err, ErrListen) || !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &le) {
				t.Fatalf("err = %v, want a ListenError matching ErrListen and EADDRINUSE", err)
			}
			for _, want := range []string{listen, fmt.Sprintf(tc.port, port), "pid " + strconv.Itoa(pid), "p2p.test"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestSharedPortFoundAfterListening covers the race the exclusive probe
// cannot: another process that starts listening with SO_REUSEPORT after
// the probe and before (or after) the host. checkListeners finds it in
// /proc/net.
func TestSharedPortFoundAfterListening(t *testing.T) {
	port := testkit.FreePort(t)
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	h := newHost(t, Config{ListenAddrs: []string{listen}})
	addrs, err := parseListenAddrs([]string{listen})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkListeners(h, addrs); err != nil {
		t.Fatalf("alone on the port: %v", err)
	}
	pid := holder(t, fmt.Sprintf("tcp:127.0.0.1:%d:reuseport", port))
	err = checkListeners(h, addrs)
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(pid)) {
		t.Fatalf("checkListeners with a second listener: %v, want ErrListen naming pid %d", err, pid)
	}
}

// TestEveryListenerMustComeUp: an address libp2p has no transport for is
// not silently dropped.
func TestEveryListenerMustComeUp(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir(), Logger: quiet,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic"}})
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "/ip4/127.0.0.1/udp/0/quic") {
		t.Fatalf("err = %v, want ErrListen naming the QUIC draft address", err)
	}
	_, err = New(Config{DataDir: t.TempDir(), Logger: quiet,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/192.0.2.1/tcp/0"}})
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "192.0.2.1") {
		t.Fatalf("err = %v, want ErrListen naming the address this box does not have", err)
	}
}

// TestFixedPortsAgainAfterClose: a node restarted on its fixed ports
// (connections of the last run in TIME_WAIT) starts.
func TestFixedPortsAgainAfterClose(t *testing.T) {
	port := testkit.FreePort(t)
	listen := []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)}
	dir := t.TempDir()
	a, err := New(Config{DataDir: dir, Logger: quiet, ListenAddrs: listen})
	if err != nil {
		t.Fatal(err)
	}
	b := newHost(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a, err = New(Config{DataDir: dir, Logger: quiet, ListenAddrs: listen})
	if err != nil {
		t.Fatalf("restart on the same ports: %v", err)
	}
	a.Close()
}
