//go:build linux && (amd64 || arm64)

// Package nonetlink makes this process unable to open netlink sockets, as
// Android 11+ makes apps unable to list network interfaces (SELinux
// denies the netlink route socket Go's net.Interfaces and
// net.InterfaceAddrs use, and so libp2p's interface listing and go-netroute).
// Tests install it to run the phone side of the SDK on Linux as it runs
// on a phone: the syscall really fails, with the error a phone sees
// ("route ip+net: netlinkrib: permission denied"). It is for tests only;
// nothing in the product installs it.
package nonetlink

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Env is the variable a re-executed test binary finds to install the
// filter before it runs (Reexec, InstallIfAsked).
const Env = "REDPANDA_NO_NETLINK"

// offsets in struct seccomp_data
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] on a little-endian machine
)

func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	panic("nonetlink: unsupported GOARCH " + runtime.GOARCH)
}

// program is the seccomp filter: socket(AF_NETLINK, …) fails with
// EACCES; every other call is allowed. A call made under another
// architecture's calling convention is refused whole, so the filter
// cannot be stepped around.
func program() []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	const (
		allow = unix.SECCOMP_RET_ALLOW
		deny  = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
		kill  = unix.SECCOMP_RET_KILL_PROCESS
	)
	return []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jeq(auditArch(), 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, kill),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
		jeq(unix.SYS_SOCKET, 0, 3),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
		jeq(unix.AF_NETLINK, 0, 1),
		stmt(unix.BPF_RET|unix.BPF_K, deny),
		stmt(unix.BPF_RET|unix.BPF_K, allow),
	}
}

// Install adds the filter to every thread of this process, for good: it
// cannot be removed, and processes this one starts (exec included)
// inherit it. It needs no privilege (it sets no_new_privs first).
func Install() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("nonetlink: no_new_privs: %w", err)
	}
	prog := program()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("nonetlink: seccomp: %w", errno)
	}
	return nil
}

// Check reports whether netlink is closed to this process, by trying what
// net.Interfaces does.
func Check() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err == nil {
		unix.Close(fd)
		return errors.New("nonetlink: a netlink socket opened")
	}
	if !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("nonetlink: netlink socket failed with %v, want EACCES", err)
	}
	return nil
}

// InstallIfAsked installs the filter when Env is set, before a test
// binary runs its tests, and then, if Env names a program ("exec:PATH"),
// replaces the process with it and the remaining arguments (os.Args after
// "--"). It returns whether the filter is on.
func InstallIfAsked() (bool, error) {
	v := os.Getenv(Env)
	if v == "" {
		return false, nil
	}
	if err := Install(); err != nil {
		return false, err
	}
	const pfx = "exec:"
	if len(v) > len(pfx) && v[:len(pfx)] == pfx {
		args := os.Args
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		env := os.Environ()
		for i, e := range env {
			if len(e) > len(Env) && e[:len(Env)+1] == Env+"=" {
				env = append(env[:i:i], env[i+1:]...)
				break
			}
		}
		return true, syscall.Exec(v[len(pfx):], args, env)
	}
	return true, nil
}

// Command returns a command that runs name with args under the filter:
// it starts self (a test binary whose TestMain calls InstallIfAsked),
// which installs the filter and execs name.
func Command(self, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(self, append([]string{"--"}, append([]string{name}, args...)...)...)
	cmd.Env = append(os.Environ(), Env+"=exec:"+name)
	return cmd
}
