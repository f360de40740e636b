package nattest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/redpanda-p2p/homenode/node/p2p"
)

// The lab, all inside namespaces the test creates and deletes:
//
//	<p>-wan    eth0 11.77.0.2/24: the relay node (:4101) and the client (:4102)
//	<p>-router wan0 11.77.0.1/24, lan0 192.168.77.1/24; nft masquerade out of
//	           wan0, forwarding from wan to lan only for established flows;
//	           no UPnP
//	<p>-home   eth0 192.168.77.10/24, default via the router: the home node
//
// The wan side uses a public-looking range because libp2p hands out relay
// addresses only for public addresses; the namespaces have no route out,
// so nothing is ever sent beyond them. The wan namespace has no route to
// 192.168.77.0/24: the client can reach the home node only through the
// relay, exactly as across a real NAT.
const (
	roleEnv   = "NATTEST_ROLE"
	relayEnv  = "NATTEST_RELAY"
	targetEnv = "NATTEST_TARGET"
	homeIP    = "192.168.77.10"
	wanIP     = "11.77.0.2"
	sumProto  = "/redpanda-test/sum/1.0.0"
	payload   = 1 << 20 // well past libp2p's default 128 KiB relay cap
)

const routerNFT = `table inet homenat {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "wan0" masquerade
  }
}
`

type lab struct {
	t                 *testing.T
	wan, router, home string
}

func run(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func newLab(t *testing.T) *lab {
	if testing.Short() {
		t.Skip("NAT namespace test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("NAT namespace test needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("NAT namespace test needs %s (apt-get install iproute2 nftables)", bin)
		}
	}
	p := "rpnat-" + strconv.Itoa(os.Getpid())
	l := &lab{t: t, wan: p + "-wan", router: p + "-router", home: p + "-home"}
	// Registered before anything exists, so a failure at any step still
	// removes what was made.
	t.Cleanup(l.teardown)
	for _, ns := range []string{l.wan, l.router, l.home} {
		run(t, "", "ip", "netns", "add", ns)
		run(t, "", "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "", "ip", "link", "add", "wan0", "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", l.wan)
	run(t, "", "ip", "link", "add", "lan0", "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", l.home)
	for _, c := range [][]string{
		{l.router, "addr", "add", "11.77.0.1/24", "dev", "wan0"},
		{l.router, "link", "set", "wan0", "up"},
		{l.router, "addr", "add", "192.168.77.1/24", "dev", "lan0"},
		{l.router, "link", "set", "lan0", "up"},
		{l.wan, "addr", "add", wanIP + "/24", "dev", "eth0"},
		{l.wan, "link", "set", "eth0", "up"},
		{l.home, "addr", "add", homeIP + "/24", "dev", "eth0"},
		{l.home, "link", "set", "eth0", "up"},
		{l.home, "route", "add", "default", "via", "192.168.77.1"},
	} {
		run(t, "", "ip", append([]string{"-n", c[0]}, c[1:]...)...)
	}
	run(t, "", "ip", "netns", "exec", l.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, routerNFT, "ip", "netns", "exec", l.router, "nft", "-f", "-")
	return l
}

func (l *lab) teardown() {
	for _, ns := range []string{l.wan, l.router, l.home} {
		exec.Command("ip", "netns", "del", ns).Run() // removes its veths too
	}
}

// node is one child process: a libp2p host in a namespace.
type node struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  []string
	news   chan struct{}
	exited chan struct{}
}

func (l *lab) start(t *testing.T, ns, role string, env ...string) *node {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestNATChild$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	n := &node{name: role, cmd: cmd, news: make(chan struct{}, 1), exited: make(chan struct{})}
	n.stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			n.mu.Lock()
			n.lines = append(n.lines, sc.Text())
			n.mu.Unlock()
			select {
			case n.news <- struct{}{}:
			default:
			}
		}
		cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.stdin.Close()
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			n.cmd.Process.Kill() // ip netns exec execs the child: this is its PID
			<-n.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", n.name, n.output())
		}
	})
	return n
}

func (n *node) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

// await returns the rest of the first line starting with "RP key ".
func (n *node) await(t *testing.T, key string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		n.mu.Lock()
		for _, l := range n.lines {
			if v, ok := strings.CutPrefix(l, "RP "+key+" "); ok {
				n.mu.Unlock()
				return v
			}
		}
		n.mu.Unlock()
		select {
		case <-n.news:
		case <-n.exited:
			t.Fatalf("%s exited before %q:\n%s", n.name, key, n.output())
		case <-timeout:
			t.Fatalf("%s never reported %q:\n%s", n.name, key, n.output())
		}
	}
}

// TestNATRelay: the client in wan reaches the home node behind the NAT
// router only through the friend's relay, and a 1 MiB stream crosses the
// circuit. Whether DCUtR then replaced the relayed connection with a direct
// one is logged, not required (it depends on the NAT's behaviour).
func TestNATRelay(t *testing.T) {
	l := newLab(t)
	relay := l.start(t, l.wan, "relay")
	relayInfo := relay.await(t, "relay", 15*time.Second)

	home := l.start(t, l.home, "home", relayEnv+"="+relayInfo)
	target := home.await(t, "reserved", 30*time.Second)
	if !strings.Contains(target, "/p2p-circuit/p2p/") || !strings.HasPrefix(target, "/ip4/"+wanIP+"/") {
		t.Fatalf("home node's relay address %q is not a circuit through the relay at %s", target, wanIP)
	}

	client := l.start(t, l.wan, "client", targetEnv+"="+target)
	if got := client.await(t, "direct-before-relay", 15*time.Second); got != "refused" {
		t.Fatalf("client reached the home node's LAN address directly (%s): the NAT is not in the way", got)
	}
	if got := client.await(t, "relayed", 20*time.Second); got != hex.EncodeToString(sum(payload)) {
		t.Fatalf("relayed transfer: %s", got)
	}
	t.Logf("DCUtR: %s", client.await(t, "dcutr", 20*time.Second))
}

// TestNATChild is one node of TestNATRelay, run inside its namespace. It
// prints "RP key value" lines and stops when its stdin closes.
func TestNATChild(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		t.Skip("runs only as a child of TestNATRelay")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := p2p.Config{DataDir: t.TempDir(), Logger: log, HolePunching: true}
	switch role {
	case "relay":
		cfg.ListenAddrs = []string{"/ip4/" + wanIP + "/tcp/4101"}
		cfg.RelayService = true
		cfg.AutoNATService = true
		// The registration registry stands behind this in the appliance;
		// here every peer counts as registered (the ACL itself is tested in
		// node/p2p).
		cfg.RelayACL = func(peer.ID) bool { return true }
		cfg.ForceReachability = network.ReachabilityPublic
	case "home":
		var ai peer.AddrInfo
		if err := json.Unmarshal([]byte(os.Getenv(relayEnv)), &ai); err != nil {
			t.Fatal(err)
		}
		cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/4001"}
		cfg.StaticRelays = []peer.AddrInfo{ai}
		cfg.ForceReachability = network.ReachabilityPrivate
	case "client":
		cfg.ListenAddrs = []string{"/ip4/" + wanIP + "/tcp/4102"}
	}
	h, err := p2p.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	say := func(k, v string) { fmt.Printf("RP %s %s\n", k, v) }

	switch role {
	case "relay":
		b, _ := json.Marshal(peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
		say("relay", string(b))
	case "home":
		h.SetStreamHandler(sumProto, func(s network.Stream) {
			defer s.Close()
			d := sha256.New()
			if _, err := io.Copy(d, s); err != nil {
				s.Reset()
				return
			}
			s.Write(d.Sum(nil))
		})
		w, err := p2p.WatchReachability(h)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		wctx, wcancel := context.WithTimeout(ctx, 25*time.Second)
		st, err := w.Wait(wctx, func(s p2p.ReachabilityStatus) bool { return len(s.RelayAddrs) > 0 })
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		say("reserved", st.RelayAddrs[0].String()+"/p2p/"+h.ID().String())
	case "client":
		clientRun(ctx, t, h, say)
	}
	<-ctx.Done()
}

func clientRun(ctx context.Context, t *testing.T, h host.Host, say func(k, v string)) {
	target, err := ma.NewMultiaddr(os.Getenv(targetEnv))
	if err != nil {
		t.Fatal(err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		t.Fatal(err)
	}
	// The control: the home node's own LAN address is not reachable from
	// the wan side.
	lan := ma.StringCast("/ip4/" + homeIP + "/tcp/4001")
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	err = h.Connect(dctx, peer.AddrInfo{ID: ai.ID, Addrs: []ma.Multiaddr{lan}})
	dcancel()
	if err == nil {
		say("direct-before-relay", "connected")
		return
	}
	say("direct-before-relay", "refused")
	h.Peerstore().ClearAddrs(ai.ID)

	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	defer ccancel()
	if err := h.Connect(network.WithAllowLimitedConn(cctx, "nattest"), *ai); err != nil {
		say("relayed", "connect: "+oneLine(err))
		return
	}
	// The transfer is pinned to the circuit: DCUtR may add a direct
	// connection at any moment, and host.NewStream would prefer it.
	var circuit network.Conn
	for _, c := range h.Network().ConnsToPeer(ai.ID) {
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err == nil {
			circuit = c
		}
	}
	if circuit == nil {
		say("relayed", "no relayed connection")
		return
	}
	got, err := sendOver(network.WithAllowLimitedConn(cctx, "nattest"), circuit, payload)
	if err != nil {
		say("relayed", "transfer: "+oneLine(err))
	} else {
		say("relayed", hex.EncodeToString(got))
	}

	// Report whether DCUtR put a direct connection beside the circuit.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var direct []string
		for _, c := range h.Network().ConnsToPeer(ai.ID) {
			if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
				direct = append(direct, c.RemoteMultiaddr().String()+" ("+c.Stat().Direction.String()+")")
			}
		}
		if len(direct) > 0 {
			slices.Sort(direct)
			say("dcutr", "upgraded to a direct connection to "+strings.Join(direct, ", "))
			return
		}
		if time.Now().After(deadline) {
			say("dcutr", "no direct connection within 15 s; the circuit stays in use")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func sendOver(ctx context.Context, c network.Conn, n int) ([]byte, error) {
	s, err := c.NewStream(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(15 * time.Second))
	if err := multistream.SelectProtoOrFail(sumProto, s); err != nil {
		s.Reset()
		return nil, fmt.Errorf("protocol select: %w", err)
	}
	buf := pattern()
	for left := n; left > 0; left -= len(buf) {
		if _, err := s.Write(buf[:min(left, len(buf))]); err != nil {
			return nil, err
		}
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	return io.ReadAll(s)
}

func pattern() []byte {
	b := make([]byte, 32<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func sum(n int) []byte {
	d := sha256.New()
	buf := pattern()
	for left := n; left > 0; left -= len(buf) {
		d.Write(buf[:min(left, len(buf))])
	}
	return d.Sum(nil)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
