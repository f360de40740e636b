package portmap

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The real-router test: Debian's miniupnpd plays the home router in network
// namespaces made by the test (see shared field notes for the three traps
// it works around), and the Mapper runs in the "lan" namespace in a re-exec
// of this test binary, discovering the router over real SSDP.
//
//	<ns>-wan    198.51.100.2/24  (the internet side; nothing runs there)
//	<ns>-router wan0 198.51.100.1/24, lan0 192.168.77.1/24, miniupnpd
//	<ns>-lan    192.168.77.10/24 (the home node)
//
// All traffic stays inside these namespaces. ext_ip is only reported to
// clients; nothing is ever sent to it.

const (
	childEnv   = "PORTMAP_REALROUTER_CHILD"
	lanIP      = "192.168.77.10"
	routerExt  = "11.1.2.3" // not reserved, so miniupnpd forwards (trap 1)
	childLease = 4 * time.Second
)

const routerNFT = `table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`

const miniupnpdConf = `ext_ifname=wan0
ext_ip=%s
listening_ip=lan0
port=0
enable_upnp=yes
enable_natpmp=no
secure_mode=yes
system_uptime=yes
notify_interval=60
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
lease_file=%s
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
allow 1024-65535 192.168.77.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`

type netlab struct {
	t                 *testing.T
	dir               string
	router, wan, lan  string
	conf, leases, log string
	daemon            *exec.Cmd
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var labSeq int

// newNetlab builds the three namespaces; wanCIDR is the router's WAN
// address and extIP, if set, what it reports as its external address.
func newNetlab(t *testing.T, wanCIDR, extIP string) *netlab {
	if testing.Short() {
		t.Skip("real-router test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("real-router test needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft", "miniupnpd", "upnpc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("real-router test needs %s (apt-get install iproute2 nftables miniupnpd miniupnpc)", bin)
		}
	}
	labSeq++
	sfx := strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(labSeq)
	l := &netlab{t: t, dir: t.TempDir(),
		router: "rpmap-router-" + sfx, wan: "rpmap-wan-" + sfx, lan: "rpmap-lan-" + sfx}
	l.conf = filepath.Join(l.dir, "miniupnpd.conf")
	l.leases = filepath.Join(l.dir, "leases")
	l.log = filepath.Join(l.dir, "miniupnpd.log")
	// Cleanup is registered before anything is created so a failure at
	// any step still tears down what exists.
	t.Cleanup(l.teardown)
	for _, ns := range []string{l.router, l.wan, l.lan} {
		run(t, "", "ip", "netns", "add", ns)
		run(t, "", "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "", "ip", "link", "add", "wan0", "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", l.wan)
	run(t, "", "ip", "link", "add", "lan0", "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", l.lan)
	for _, c := range [][]string{
		{l.router, "addr", "add", wanCIDR, "dev", "wan0"},
		{l.router, "link", "set", "wan0", "up"},
		{l.router, "addr", "add", "192.168.77.1/24", "dev", "lan0"},
		{l.router, "link", "set", "lan0", "up"},
		{l.wan, "addr", "add", wanPeer(wanCIDR), "dev", "eth0"},
		{l.wan, "link", "set", "eth0", "up"},
		{l.lan, "addr", "add", lanIP + "/24", "dev", "eth0"},
		{l.lan, "link", "set", "eth0", "up"},
		{l.router, "route", "add", "default", "via", strings.Split(wanPeer(wanCIDR), "/")[0]},
		// SSDP multicast leaves lan only once it has a default route.
		{l.lan, "route", "add", "default", "via", "192.168.77.1"},
	} {
		run(t, "", "ip", append([]string{"-n", c[0]}, c[1:]...)...)
	}
	run(t, "", "ip", "netns", "exec", l.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	conf := fmt.Sprintf(miniupnpdConf, extIP, l.leases)
	if extIP == "" {
		conf = strings.Replace(conf, "ext_ip=\n", "", 1)
	}
	if err := os.WriteFile(l.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l.loadRules()
	l.startDaemon()
	return l
}

// loadRules (re)creates the router's nft table: miniupnpd 2.3.1 does not
// create its own (trap 2). Flushing it is what a router reboot does.
// wanPeer is the wan namespace's address: the router's plus one.
func wanPeer(cidr string) string {
	p := netip.MustParsePrefix(cidr)
	return netip.PrefixFrom(p.Addr().Next(), p.Bits()).String()
}

func (l *netlab) loadRules() {
	exec.Command("ip", "netns", "exec", l.router, "nft", "delete", "table", "inet", "miniupnpd").Run()
	run(l.t, routerNFT, "ip", "netns", "exec", l.router, "nft", "-f", "-")
}

func (l *netlab) startDaemon() {
	logf, err := os.OpenFile(l.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", l.router, "miniupnpd", "-f", l.conf, "-d")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.daemon = cmd
}

// stopDaemon stops miniupnpd by its PID (ip netns exec execs it, so the
// PID is miniupnpd's own).
func (l *netlab) stopDaemon(sig syscall.Signal) {
	if l.daemon == nil {
		return
	}
	l.daemon.Process.Signal(sig)
	done := make(chan struct{})
	go func() { l.daemon.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.daemon.Process.Kill()
		<-done
	}
	l.daemon = nil
}

func (l *netlab) teardown() {
	l.stopDaemon(syscall.SIGTERM)
	for _, ns := range []string{l.router, l.wan, l.lan} {
		exec.Command("ip", "netns", "del", ns).Run() // removes its veths too
	}
	if l.t.Failed() {
		if b, err := os.ReadFile(l.log); err == nil {
			l.t.Logf("miniupnpd log:\n%s", b)
		}
	}
}

// routerRules lists the DNAT rules miniupnpd installed: the router's side
// of the truth, independent of what any UPnP client says.
func (l *netlab) routerRules() string {
	out, _ := exec.Command("ip", "netns", "exec", l.router, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd").CombinedOutput()
	return string(out)
}

func (l *netlab) hasRule(proto string, port int) bool {
	want := fmt.Sprintf("dport %d dnat ip to %s:%d", port, lanIP, port)
	for _, line := range strings.Split(l.routerRules(), "\n") {
		if strings.Contains(line, want) && strings.Contains(line, protoNum(proto)) {
			return true
		}
	}
	return false
}

func protoNum(p string) string {
	if p == "TCP" {
		return "0x6"
	}
	return "0x11"
}

// leaseExpiry reads miniupnpd's lease file: PROTO:ext:client:int:expiry:desc.
func (l *netlab) leaseExpiry(proto string, port int) int64 {
	b, _ := os.ReadFile(l.leases)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 6)
		if len(f) == 6 && f[0] == proto && f[1] == strconv.Itoa(port) && f[5] == Description {
			n, _ := strconv.ParseInt(f[4], 10, 64)
			return n
		}
	}
	return 0
}

// child is the Mapper process inside the lan namespace.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  []string
	exited chan struct{}
}

func (l *netlab) startChild(t *testing.T) *child {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.lan, exe, "-test.run=^TestRealRouterChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+l.dir)
	c := &child{cmd: cmd, exited: make(chan struct{})}
	c.stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
		cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

func (c *child) saw(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func TestRealRouterMiniupnpd(t *testing.T) {
	l := newNetlab(t, "198.51.100.1/24", routerExt)
	c := l.startChild(t)
	ok := "STATUS upnp: mapped external " + routerExt
	fail := func(what string) {
		t.Fatalf("%s\nchild output:\n%s\nrouter rules:\n%s", what, c.output(), l.routerRules())
	}
	wait := func(what string, cond func() bool) {
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				fail("never happened: " + what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	wait("mapper reports mapped", func() bool { return c.saw(ok) })
	wait("router forwards TCP and UDP 4001", func() bool { return l.hasRule("TCP", 4001) && l.hasRule("UDP", 4001) })

	// The router's UPnP view, as another LAN client sees it.
	list := run(t, "", "ip", "netns", "exec", l.lan, "upnpc", "-l")
	for _, proto := range []string{"TCP", "UDP"} {
		want := fmt.Sprintf("%s  4001->%s:4001  '%s'", proto, lanIP, Description)
		if !strings.Contains(list, want) {
			fail(fmt.Sprintf("upnpc -l lacks %q:\n%s", want, list))
		}
	}

	// Renewal in place: the expiry in the router's lease file moves on
	// while the external port stays 4001.
	first := l.leaseExpiry("TCP", 4001)
	if first == 0 {
		fail("no lease in the router's lease file")
	}
	wait("lease renewed", func() bool { return l.leaseExpiry("TCP", 4001) > first })

	// The router reboots: daemon killed, its rules and leases lost.
	l.stopDaemon(syscall.SIGKILL)
	l.loadRules()
	os.Remove(l.leases)
	if l.hasRule("TCP", 4001) {
		fail("rules survived the simulated reboot")
	}
	l.startDaemon()
	wait("mappings back after router restart", func() bool { return l.hasRule("TCP", 4001) && l.hasRule("UDP", 4001) })

	// Shutdown removes the mappings.
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		fail("mapper did not exit")
	}
	if !c.saw("CLOSED") {
		fail("mapper did not close cleanly")
	}
	if l.hasRule("TCP", 4001) || l.hasRule("UDP", 4001) {
		fail("mappings left on the router after Close")
	}
	t.Logf("mapper output:\n%s", c.output())
}

// TestRealRouterCGNAT: the router's own WAN address is in carrier-grade
// space (no ext_ip), as behind a provider's NAT. miniupnpd 2.3.1 then
// withholds the address ("not suitable for external IP") and refuses every
// mapping with 501; the diagnosis must name the missing WAN address (whose
// hint explains CGNAT), not blame the router's UPnP settings.
func TestRealRouterCGNAT(t *testing.T) {
	l := newNetlab(t, "100.64.0.1/10", "")
	c := l.startChild(t)
	deadline := time.Now().Add(20 * time.Second)
	for !c.saw("STATUS upnp: no-wan-address") {
		if time.Now().After(deadline) {
			t.Fatalf("never diagnosed the missing WAN address; child output:\n%s", c.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l.hasRule("TCP", 4001) {
		t.Fatal("router forwards from a carrier-grade address; the diagnosis premise is wrong")
	}
	if c.saw("STATUS upnp: refused") || c.saw("STATUS upnp: mapped") {
		t.Fatalf("misdiagnosed; child output:\n%s", c.output())
	}
}

// TestRealRouterChild is the Mapper half of TestRealRouterMiniupnpd, run
// inside the lan namespace. It prints each status change and closes the
// Mapper when its stdin closes.
func TestRealRouterChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestRealRouterMiniupnpd")
	}
	m, err := New(Config{
		Ports:         nodePorts,
		Lease:         childLease,
		CheckInterval: 500 * time.Millisecond,
		RetryMin:      300 * time.Millisecond,
		RetryMax:      time.Second,
		CallTimeout:   2 * time.Second,
		StateFile:     filepath.Join(dir, "portmap.json"),
		Logger:        quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	stdinClosed := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	last := ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stdinClosed:
			m.Close()
			fmt.Println("CLOSED")
			return
		case <-tick.C:
			if s := m.Diagnosis().String(); s != last {
				fmt.Println("STATUS " + s)
				last = s
			}
		}
	}
}
