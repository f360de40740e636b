package sockowner

import (
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPortFindsThisProcessesListener(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6", "udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			var addr net.Addr
			var closer func() error
			host := "127.0.0.1:0"
			if strings.HasSuffix(network, "6") {
				host = "[::1]:0"
			}
			if strings.HasPrefix(network, "tcp") {
				l, err := net.Listen(network, host)
				if err != nil {
					t.Skipf("no %s here: %v", network, err)
				}
				addr, closer = l.Addr(), l.Close
			} else {
				c, err := net.ListenPacket(network, host)
				if err != nil {
					t.Skipf("no %s here: %v", network, err)
				}
				addr, closer = c.LocalAddr(), c.Close
			}
			defer closer()
			port := portOf(t, addr)
			socks := Port(network[:3], port)
			if len(socks) != 1 {
				t.Fatalf("Port(%s, %d) = %+v, want this process's one socket", network[:3], port, socks)
			}
			s := socks[0]
			if !s.Self() || s.UID != os.Getuid() || !strings.HasPrefix(s.Network, network[:3]) {
				t.Errorf("socket %+v: want held by pid %d, uid %d", s, os.Getpid(), os.Getuid())
			}
			want := filepath.Base(os.Args[0])
			if !strings.Contains(Describe(socks), want) || !strings.Contains(Describe(socks), "pid ") {
				t.Errorf("Describe = %q, want pid and %q", Describe(socks), want)
			}
		})
	}
}

func TestPortOfAnotherProcess(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: no second process to hold a port")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, l.Addr())
	l.Close()
	cmd := exec.Command(py, "-c", `import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); print("ok",flush=True); time.sleep(60)`, strconv.Itoa(port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 3)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	// Other processes (tests run in parallel) may listen on the same port
	// number on another address, [::] or 10.x: only 127.0.0.1 is ours.
	var socks []Socket
	for _, s := range Port("tcp", port) {
		if s.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			socks = append(socks, s)
		}
	}
	if len(socks) != 1 || socks[0].PID != cmd.Process.Pid || socks[0].Self() {
		t.Fatalf("Port = %+v, want pid %d", socks, cmd.Process.Pid)
	}
	if d := Describe(socks); !strings.Contains(d, "python3") {
		t.Errorf("Describe = %q, want the command", d)
	}
}

func TestUnixPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := UnixPeer(c.(*net.UnixConn))
	if !s.Self() || s.UID != os.Getuid() || !strings.Contains(s.String(), filepath.Base(os.Args[0])) {
		t.Fatalf("UnixPeer = %+v (%s), want this process", s, s)
	}
}

func TestNothingThere(t *testing.T) {
	if d := Describe(nil); d != "another process" {
		t.Errorf("Describe(nil) = %q", d)
	}
	if s := (Socket{UID: 0}).String(); s != "a process of user root" {
		t.Errorf("uid 0 = %q", s)
	}
}

func TestParseNet(t *testing.T) {
	// Two lines of a real /proc/net/tcp6 (little-endian host): [::1]:8080
	// listening, and an established connection that is left out.
	b := []byte(`  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D3C2 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1
`)
	got := parseNet("tcp6", b)
	if len(got) != 1 || got[0].Port != 8080 || got[0].Inode != 4242 || got[0].UID != 1000 {
		t.Fatalf("parseNet = %+v", got)
	}
	if isLittleEndian() && !got[0].IP.Equal(net.IPv6loopback) {
		t.Errorf("IP = %v, want ::1", got[0].IP)
	}
}

func portOf(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isLittleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }
