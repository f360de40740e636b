package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// TestHelperNodeProcess is no test of its own: TestProbeEndsDeadConnections
// runs the test binary again through it as a node in a separate process,
// so that the node can be killed with SIGKILL as a crash or a power cut
// kills it, without closing its connections.
func TestHelperNodeProcess(t *testing.T) {
	dir := os.Getenv("CLIENT_TEST_NODE_DIR")
	if dir == "" {
		t.Skip("the node process of TestProbeEndsDeadConnections")
	}
	n := startNodeIn(t, dir, os.Getenv("CLIENT_TEST_NODE_LISTEN"), ownedBy(t, os.Getenv("CLIENT_TEST_NODE_OWNER")))
	fmt.Printf("address: %s\n", n.Addrs()[0])
	time.Sleep(10 * time.Minute) // until killed
}

// nodeProcess runs TestHelperNodeProcess: a node owned by owner on dir
// (its identity and store), listening on listen. It returns the node's
// address and the process.
func nodeProcess(t *testing.T, dir, listen, owner string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNodeProcess$")
	cmd.Env = append(os.Environ(), "CLIENT_TEST_NODE_DIR="+dir, "CLIENT_TEST_NODE_LISTEN="+listen, "CLIENT_TEST_NODE_OWNER="+owner)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "address: "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("the node process ended before printing its address")
		}
		return a, cmd
	case <-time.After(60 * time.Second):
		t.Fatal("the node process printed no address within 60 s")
		return "", nil
	}
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// TestProbeEndsDeadConnections: a node killed with SIGKILL leaves the
// client a QUIC connection that nothing closes for QUIC's idle timeout
// (30 s). When the node is back on its address at once (a crash that
// systemd restarts), one probe ends the dead connection (the new process
// answers the ping with a stateless reset); when it is gone, a probe that
// gets no answer ends it. A live connection passes the probe, and the
// client is served again after the restart.
func TestProbeEndsDeadConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node in a separate process")
	}
	owner := openClient(t, home(t, "owner"))
	if _, err := owner.Channels().Create("fam"); err != nil {
		t.Fatal(err)
	}
	dir, port := t.TempDir(), testkit.FreePort(t)
	listen := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)
	addr, proc := nodeProcess(t, dir, listen, owner.ID())
	if _, err := owner.Nodes().Add(addr); err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(addr, "/p2p/")
	p, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// dial, not Connect: no keepConnected probes or redials behind the
	// test's back.
	conns := func() []string {
		var ids []string
		for _, cn := range owner.h.Network().ConnsToPeer(p) {
			if !strings.Contains(cn.RemoteMultiaddr().String(), "/quic-v1") {
				t.Fatalf("connected over %s, not QUIC", cn.RemoteMultiaddr())
			}
			ids = append(ids, cn.ID())
		}
		return ids
	}
	dialAndProbe := func() []string {
		t.Helper()
		owner.activeNodes() // puts the node's address in the peerstore
		if err := owner.dial(ctx, p); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "identify names the node's protocols", func() bool {
			ok, _ := owner.h.Peerstore().SupportsProtocols(p, "/ipfs/ping/1.0.0")
			return len(ok) > 0
		})
		if owner.probe(ctx, p) {
			t.Fatal("a probe of a live connection said it was dead")
		}
		live := conns()
		if len(live) == 0 {
			t.Fatal("no connection after a probe of a live one")
		}
		return live
	}
	gone := func(what string, old []string) {
		t.Helper()
		for _, id := range conns() {
			for _, o := range old {
				if id == o {
					t.Fatalf("%s: the dead connection %s is still open", what, id)
				}
			}
		}
	}

	old := dialAndProbe()
	kill(t, proc)
	_, proc = nodeProcess(t, dir, listen, owner.ID())
	if !owner.probe(ctx, p) && len(owner.h.Network().ConnsToPeer(p)) > 0 {
		// Not ended by the probe: then it must have ended already (any
		// packet of the client met the new process's stateless reset).
		t.Fatal("the probe did not notice that the node was killed and restarted")
	}
	gone("killed and restarted", old)

	old = dialAndProbe()
	kill(t, proc)
	if !owner.probe(ctx, p) {
		t.Fatal("the probe did not notice that the node was killed")
	}
	gone("killed", old)

	nodeProcess(t, dir, listen, owner.ID())
	connect(t, owner)
	if _, err := owner.Send(ctx, "fam", "served again"); err != nil {
		t.Fatalf("send after the node came back: %v", err)
	}
}

// TestKeepConnectedProbes: a running client whose node is killed with
// SIGKILL and restarted at once on its address gets a new session there
// because its own probe ended the dead connection (it says so in its log),
// not QUIC's idle timeout, and is served again. The client only dials (a
// phone): a client that listens may be dialled back by the restarted node,
// over a new connection that owes nothing to the probe.
func TestKeepConnectedProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node in a separate process")
	}
	var logs syncBuffer
	owner, err := Open(Config{Home: home(t, "owner"), Create: true, DialOnly: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if _, err := owner.Channels().Create("fam"); err != nil {
		t.Fatal(err)
	}
	dir, port := t.TempDir(), testkit.FreePort(t)
	listen := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)
	addr, proc := nodeProcess(t, dir, listen, owner.ID())
	if _, err := owner.Nodes().Add(addr); err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(addr, "/p2p/")
	p, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, owner)
	var old []string
	for _, cn := range owner.h.Network().ConnsToPeer(p) {
		old = append(old, cn.ID())
	}
	if len(old) == 0 {
		t.Fatal("connected, but no connection to the node")
	}
	// Killed once the client is idle: any packet it sends to the restarted
	// node (a registration's or a hand-over's, just after connecting) is
	// answered by a stateless reset too, and the probe is for the idle
	// connection that sends none.
	time.Sleep(2 * time.Second)
	kill(t, proc)
	nodeProcess(t, dir, listen, owner.ID())
	waitUntil(t, "a session over a new connection", func() bool {
		cs := owner.h.Network().ConnsToPeer(p)
		for _, cn := range cs {
			for _, o := range old {
				if cn.ID() == o {
					return false
				}
			}
		}
		return len(cs) > 0 && len(owner.Nodes().Connected()) == 1
	})
	if !strings.Contains(logs.String(), "did not answer a ping") {
		t.Fatalf("the dead connection ended, but not by a probe; the client's log:\n%s", logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := owner.Send(ctx, "fam", "served again"); err != nil {
		t.Fatalf("send after the node came back: %v", err)
	}
}

// syncBuffer is a bytes.Buffer a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
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

// TestNoProbesWhenTurnedOff: a client with a negative ProbeInterval (an
// app that would rather save battery) runs no prober, and one with the
// default runs one per connected node.
func TestNoProbesWhenTurnedOff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     int
	}{{-1, 0}, {0, 1}} {
		c, err := Open(Config{Home: home(t, "phone"), Create: true, DialOnly: true, ProbeInterval: tc.interval, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Channels().Create("fam"); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, ownedBy(t, c.ID()))
		addNodes(t, c, n)
		connect(t, c)
		if tc.want > 0 {
			waitUntil(t, "a prober of the connected node", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.probes.running) == tc.want
			})
			continue
		}
		c.keepProbing(n.Host.ID())
		c.mu.Lock()
		got := len(c.probes.running)
		c.mu.Unlock()
		if got != 0 {
			t.Fatalf("ProbeInterval %v: %d probers running, want none", tc.interval, got)
		}
	}
}
