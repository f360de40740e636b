package main

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cmd  string
		rest []string
		err  string
	}{
		{nil, "run", nil, ""},
		{[]string{"--data-dir", "d"}, "run", []string{"--data-dir", "d"}, ""},
		{[]string{"status", "--data-dir", "d"}, "status", []string{"--data-dir", "d"}, ""},
		{[]string{"--data-dir", "d", "status"}, "status", []string{"--data-dir", "d"}, ""},
		{[]string{"--data-dir=d", "--json", "block", "C"}, "block", []string{"--data-dir=d", "--json", "C"}, ""},
		{[]string{"-admin-socket", "s", "--json", "users"}, "users", []string{"-admin-socket", "s", "--json"}, ""},
		{[]string{"--config", "/dev/null", "--set", "upnp=false", "run"}, "run", []string{"--config", "/dev/null", "--set", "upnp=false"}, ""},
		{[]string{"--data-dir", "status"}, "run", []string{"--data-dir", "status"}, ""}, // a directory named status
		{[]string{"--data-dir", "d", "frobnicate"}, "", nil, `unknown command "frobnicate"`},
	} {
		cmd, rest, err := splitCommand(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || cmd != tc.cmd || strings.Join(rest, " ") != strings.Join(tc.rest, " ") {
			t.Errorf("%q: %q %q %v, want %q %q", tc.args, cmd, rest, err, tc.cmd, tc.rest)
		}
	}
}

// TestAdminFlagsBeforeTheCommand runs the real binary with the global
// flags in front: `homenode --admin-socket S --json status`.
func TestAdminFlagsBeforeTheCommand(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	out, e, err := homenode(t, "", "--config", "/dev/null", "--admin-socket", d.socket, "--json", "status")
	if err != nil || !strings.Contains(out, `"peer_id":"`+d.peerID) {
		t.Fatalf("flags before status: %v\n%s%s", err, out, e)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestStatusWithoutAccessSaysSo runs `homenode status` as user nobody
// against a node whose socket is for a group nobody is not in: it must
// say permission denied and name the group, not "no running node".
func TestStatusWithoutAccessSaysSo(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	var group *user.Group
	for _, name := range []string{"adm", "daemon", "sys"} {
		if g, err := user.LookupGroup(name); err == nil && g.Gid != nobody.Gid {
			group = g
			break
		}
	}
	if group == nil {
		t.Skip("no group to give the socket to")
	}
	// A layout like systemd's: a world-searchable parent, a runtime
	// directory of mode 0750 for the node's group, the socket in it.
	top, err := os.MkdirTemp("", "homenode-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	runDir := filepath.Join(top, "run")
	bin := filepath.Join(top, "homenode")
	for _, step := range []error{
		os.Chmod(top, 0o755),
		os.Mkdir(runDir, 0o750),
		os.Chown(runDir, 0, mustAtoi(group.Gid)),
		copyFile(binary, bin, 0o755),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	sock := filepath.Join(runDir, "admin.sock")
	d := startDaemon(t, t.TempDir(), nil, "--admin-socket", sock, "--set", "admin_group="+group.Name)

	cmd := exec.Command(bin, "status", "--config", "/dev/null", "--admin-socket", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Dir = top
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("status as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"permission denied", "user nobody", "group " + group.Name, "sudo adduser $USER " + group.Name} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "no running node") {
		t.Errorf("output says no running node:\n%s", out)
	}
	// Root, in the group by being root, gets the status.
	if _, e, err := homenode(t, "", "status", "--config", "/dev/null", "--admin-socket", sock); err != nil {
		t.Fatalf("status as root: %v %s", err, e)
	}
	d.stop(t)
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}
