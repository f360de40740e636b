// Package sockowner says which process holds a local TCP or UDP port or a
// Unix socket path, as far as /proc lets this process see: the pid and
// command line when it may read the holder's file descriptors (root, or
// the same user), else only the user that owns the socket; for a Unix
// socket, the listening process through SO_PEERCRED. It is for
// error messages ("port 4001/tcp is in use by pid 812 (homenode run)")
// and for noticing that another process shares a port through
// SO_REUSEPORT. It must not know what the ports are for.
package sockowner

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Socket is one socket found in /proc/net.
type Socket struct {
	// Network is "tcp", "tcp6", "udp", "udp6" or "unix".
	Network string
	// IP and Port are the local address (nil and 0 for unix).
	IP   net.IP
	Port int
	// Path is the unix socket's path.
	Path  string
	UID   int // -1 when unknown (unix sockets)
	Inode uint64
	// PID is the holder, 0 when /proc does not let this process see it.
	PID int
	// Command is the holder's command line, shortened; empty when PID is 0.
	Command string
}

// Self reports whether this process holds the socket.
func (s Socket) Self() bool { return s.PID != 0 && s.PID == os.Getpid() }

// String describes the holder for a person: "pid 812 (homenode run
// --data-dir /var/lib/homenode)", "a process of user homenode", or
// "another process".
func (s Socket) String() string {
	switch {
	case s.PID != 0 && s.Command != "":
		return fmt.Sprintf("pid %d (%s)", s.PID, s.Command)
	case s.PID != 0:
		return fmt.Sprintf("pid %d", s.PID)
	case s.UID >= 0:
		if u, err := user.LookupId(strconv.Itoa(s.UID)); err == nil {
			return "a process of user " + u.Username
		}
		return fmt.Sprintf("a process of uid %d", s.UID)
	}
	return "another process"
}

// tcpListen is the TCP_LISTEN state in /proc/net/tcp.
const tcpListen = 0x0A

// Port lists the sockets bound to port: for "tcp" the listening ones (IPv4
// and IPv6), for "udp" every bound one. What cannot be read from /proc
// is left out: the caller then says "another process".
func Port(network string, port int) []Socket {
	var out []Socket
	for _, t := range tables(network) {
		b, err := os.ReadFile("/proc/net/" + t)
		if err != nil {
			continue // no IPv6 in this kernel, or no /proc
		}
		for _, s := range parseNet(t, b) {
			if s.Port != port || s.Inode == 0 {
				continue
			}
			out = append(out, s)
		}
	}
	return withHolders(out)
}

// tables are the /proc/net files of network.
func tables(network string) []string {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return []string{"tcp", "tcp6"}
	case "udp", "udp4", "udp6":
		return []string{"udp", "udp6"}
	}
	return nil
}

// parseNet reads /proc/net/{tcp,udp}{,6}: "sl local rem st queues tr
// retrnsmt uid timeout inode ...", addresses as hex words in the host's
// byte order. TCP sockets other than listening ones are left out.
func parseNet(table string, b []byte) []Socket {
	var out []Socket
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		ip, err := parseHexIP(host)
		if err != nil {
			continue
		}
		p, err1 := strconv.ParseUint(port, 16, 16)
		st, err2 := strconv.ParseUint(f[3], 16, 8)
		uid, err3 := strconv.Atoi(f[7])
		inode, err4 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		if strings.HasPrefix(table, "tcp") && st != tcpListen {
			continue
		}
		out = append(out, Socket{Network: table, IP: ip, Port: int(p), UID: uid, Inode: inode})
	}
	return out
}

// parseHexIP decodes an address of /proc/net: 32-bit words in the host's
// byte order.
func parseHexIP(h string) (net.IP, error) {
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, fmt.Errorf("sockowner: bad address %q", h)
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		binary.BigEndian.PutUint32(ip[w:], binary.NativeEndian.Uint32(raw[w:]))
	}
	return ip, nil
}

// UnixPeer names the process at the other end of a connected Unix
// socket (SO_PEERCRED): for a client, the process that listens. Its pid
// is known even when /proc hides its descriptors from this process.
func UnixPeer(c *net.UnixConn) Socket {
	s := Socket{Network: "unix", UID: -1}
	if a, ok := c.RemoteAddr().(*net.UnixAddr); ok && a != nil {
		s.Path = a.Name
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return s
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil {
		return s
	}
	s.PID, s.UID = int(cred.Pid), int(cred.Uid)
	if p, err := procfs.NewProc(s.PID); err == nil {
		s.Command = command(p)
	}
	return s
}

// Describe names the holders of socks for a person, or "another process"
// when there are none this process can see.
func Describe(socks []Socket) string {
	var names []string
	seen := map[string]bool{}
	for _, s := range socks {
		n := s.String()
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "another process"
	}
	return strings.Join(names, ", ")
}

// withHolders fills in PID and Command by looking for the sockets' inodes
// among the file descriptors of every process this process may inspect.
func withHolders(socks []Socket) []Socket {
	if len(socks) == 0 {
		return socks
	}
	want := map[string][]int{}
	for i, s := range socks {
		key := "socket:[" + strconv.FormatUint(s.Inode, 10) + "]"
		want[key] = append(want[key], i)
	}
	procs, err := procfs.AllProcs()
	if err != nil {
		return socks
	}
	found := 0
	for _, p := range procs {
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue // another user's process: not ours to see
		}
		for _, t := range targets {
			idx, ok := want[t]
			if !ok {
				continue
			}
			cmd := command(p)
			for _, i := range idx {
				if socks[i].PID == 0 {
					socks[i].PID, socks[i].Command = p.PID, cmd
					found++
				}
			}
		}
		if found == len(socks) {
			break
		}
	}
	return socks
}

// command is a process's command line, argv[0] as its base name, cut to
// a length that fits an error message.
func command(p procfs.Proc) string {
	args, err := p.CmdLine()
	if err != nil || len(args) == 0 {
		c, _ := p.Comm()
		return c
	}
	args[0] = filepath.Base(args[0])
	s := strings.Join(args, " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// Others lists the sockets bound to port (as Port does) that this process
// does not hold. It resolves holders only for those, so it is cheap when
// the port is this process's alone.
func Others(network string, port int) []Socket {
	self := selfInodes()
	var out []Socket
	for _, t := range tables(network) {
		b, err := os.ReadFile("/proc/net/" + t)
		if err != nil {
			continue
		}
		for _, s := range parseNet(t, b) {
			if s.Port == port && s.Inode != 0 && !self[s.Inode] {
				out = append(out, s)
			}
		}
	}
	return withHolders(out)
}

// selfInodes are the socket inodes among this process's descriptors.
func selfInodes() map[uint64]bool {
	out := map[uint64]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, e := range ents {
		t, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if n, ok := strings.CutPrefix(t, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out
}
