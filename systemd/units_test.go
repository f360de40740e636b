package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var units = []string{"homenode.service", "homenode-pairing-console.service",
	"homenode-commit.service", "homenode-fallback.service", "homenode-update.service", "homenode-update.path"}

// maxExposure is the aim for `systemd-analyze security` (0 safest, 10 worst).
const maxExposure = 2.0

func analyzer(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd; scripts/install-test-deps.sh does it as root): skipping unit checks")
	}
	return p
}

// stage copies the units into a temporary directory with ExecStart
// pointing at an executable that exists there: verify checks that the
// command is executable, and the real one is installed only by the .deb.
func stage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "homenode")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), "/usr/bin/homenode", bin))
		if err := os.WriteFile(filepath.Join(dir, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestUnitsVerify(t *testing.T) {
	sa := analyzer(t)
	dir := stage(t)
	args := []string{"verify"}
	for _, u := range units {
		args = append(args, filepath.Join(dir, u))
	}
	out, err := exec.Command(sa, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on unknown directives and bad values; its warnings
	// name the unit, so any line about ours is a failure.
	for _, line := range strings.Split(string(out), "\n") {
		for _, u := range units {
			if strings.Contains(line, u) {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}

func TestUnitsSecurity(t *testing.T) {
	sa := analyzer(t)
	dir := stage(t)
	re := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		t.Run(u, func(t *testing.T) {
			out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", filepath.Join(dir, u)).CombinedOutput()
			m := re.FindSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze security: %v; no exposure level in:\n%s", err, out)
			}
			level, perr := strconv.ParseFloat(string(m[1]), 64)
			if perr != nil {
				t.Fatal(perr)
			}
			t.Logf("%s exposure %.1f", u, level)
			if level > maxExposure {
				t.Errorf("%s exposure %.1f, want <= %.1f:\n%s", u, level, maxExposure, out)
			}
		})
	}
}

// directives reads a unit file into section -> key -> values.
func directives(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			d[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not KEY=VALUE: %q", path, line)
			}
			d[section][k] = append(d[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestServiceDirectives pins what the daemon relies on and what the issue
// requires; systemd-analyze accepts a unit without any of them.
func TestServiceDirectives(t *testing.T) {
	d := directives(t, "homenode.service")
	tests := []struct{ section, key, want string }{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "Restart", "on-failure"},
		{"Service", "User", "homenode"},
		{"Service", "StateDirectory", "homenode"},
		{"Service", "RuntimeDirectory", "homenode"},
		{"Service", "LimitNOFILE", "8192"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "no"},
		{"Service", "DevicePolicy", "closed"},
		{"Service", "DeviceAllow", "char-input r"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "MemoryDenyWriteExecute", "yes"},
		{"Service", "LockPersonality", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"},
		{"Service", "SystemCallFilter", "@system-service"},
		{"Unit", "Wants", "network-online.target time-sync.target"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, tt := range tests {
		t.Run(tt.section+"/"+tt.key, func(t *testing.T) {
			got, ok := d[tt.section][tt.key]
			if !ok {
				t.Fatalf("[%s] %s= missing", tt.section, tt.key)
			}
			for _, v := range got {
				if v == tt.want {
					return
				}
			}
			t.Errorf("[%s] %s=%q, want one to be %q", tt.section, tt.key, got, tt.want)
		})
	}
	for _, key := range []string{"WatchdogSec", "MemoryHigh", "MemoryMax"} {
		if len(d["Service"][key]) == 0 {
			t.Errorf("[Service] %s= missing", key)
		}
	}
	// Requires= on the network would keep the node down when offline.
	if r := d["Unit"]["Requires"]; len(r) > 0 {
		t.Errorf("[Unit] Requires=%q: the node must start without a network", r)
	}
}

// TestMemoryLimits: Go's soft limit must sit below MemoryHigh, which must
// sit below MemoryMax, so the collector works before the kernel throttles
// and long before it kills.
func TestMemoryLimits(t *testing.T) {
	d := directives(t, "homenode.service")
	var gomem string
	for _, e := range d["Service"]["Environment"] {
		if v, ok := strings.CutPrefix(e, "GOMEMLIMIT="); ok {
			gomem = v
		}
	}
	tests := []struct {
		name string
		val  string
	}{{"GOMEMLIMIT", gomem}, {"MemoryHigh", last(d["Service"]["MemoryHigh"])}, {"MemoryMax", last(d["Service"]["MemoryMax"])}}
	var prev int64
	for _, tt := range tests {
		n, err := bytesOf(tt.val)
		if err != nil {
			t.Fatalf("%s=%q: %v", tt.name, tt.val, err)
		}
		if n <= prev {
			t.Errorf("%s=%s (%d bytes) is not above the limit before it (%d bytes)", tt.name, tt.val, n, prev)
		}
		prev = n
	}
}

func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// bytesOf parses systemd's K/M/G and Go's KiB/MiB/GiB suffixes (both 1024-based).
func bytesOf(s string) (int64, error) {
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, suf.s); ok {
			s, mult = v, suf.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// TestUpdateUnits pins what the A/B firmware update relies on: a failed
// commit unit starts the fallback unit, which reboots the board only when
// `homenode update fallback` says this boot is a failed trial (never on any
// failure: a new card would reboot for ever), the installer
// reboots into what it installed, both are inert outside the A/B image,
// and they reach the raw disk through the disk group and a device ACL, not
// as root.
func TestUpdateUnits(t *testing.T) {
	for _, tt := range []struct{ unit, section, key, want string }{
		{"homenode-commit.service", "Unit", "OnFailure", "homenode-fallback.service"},
		{"homenode-fallback.service", "Unit", "ConditionKernelCommandLine", "homenode.slot"},
		{"homenode-fallback.service", "Service", "ExecCondition", "/usr/bin/homenode update fallback --data-dir /var/lib/homenode"},
		{"homenode-fallback.service", "Service", "ExecStart", "+/usr/bin/systemctl --no-block reboot"},
		{"homenode-fallback.service", "Service", "User", "homenode"},
		{"homenode-fallback.service", "Service", "SupplementaryGroups", "disk"},
		{"homenode-fallback.service", "Service", "CapabilityBoundingSet", ""},
		{"homenode-fallback.service", "Service", "ReadWritePaths", "-/var/lib/homenode/update"},
		{"homenode-commit.service", "Unit", "ConditionKernelCommandLine", "homenode.slot"},
		{"homenode-commit.service", "Unit", "After", "local-fs.target var-lib-homenode.mount"},
		{"homenode-commit.service", "Service", "StateDirectory", "homenode/update"},
		{"homenode-update.service", "Service", "StateDirectory", "homenode/update"},
		{"homenode-commit.service", "Service", "ExecStart", "/usr/bin/homenode update commit --data-dir /var/lib/homenode"},
		{"homenode-commit.service", "Service", "User", "homenode"},
		{"homenode-commit.service", "Service", "SupplementaryGroups", "disk"},
		{"homenode-commit.service", "Service", "DevicePolicy", "closed"},
		{"homenode-commit.service", "Service", "CapabilityBoundingSet", ""},
		{"homenode-update.service", "Unit", "SuccessAction", "reboot"},
		{"homenode-update.service", "Unit", "ConditionKernelCommandLine", "homenode.slot"},
		{"homenode-update.service", "Service", "ExecStart", "/usr/bin/homenode update install-request --data-dir /var/lib/homenode"},
		{"homenode-update.service", "Service", "User", "homenode"},
		{"homenode-update.service", "Service", "PrivateNetwork", "yes"},
		{"homenode-update.service", "Service", "CapabilityBoundingSet", ""},
		{"homenode-update.path", "Path", "PathExists", "/var/lib/homenode/update/request.json"},
	} {
		d := directives(t, tt.unit)
		got := d[tt.section][tt.key]
		found := false
		for _, v := range got {
			found = found || v == tt.want
		}
		if !found {
			t.Errorf("%s [%s] %s=%q, want %q", tt.unit, tt.section, tt.key, got, tt.want)
		}
	}
	// Nothing but the fallback unit's check may reboot the board: no
	// FailureAction= or SuccessAction= on either (the commit unit's
	// failure is not a reason by itself, and a skipped ExecCondition=
	// must not count as a success).
	for _, u := range []string{"homenode-commit.service", "homenode-fallback.service"} {
		for _, k := range []string{"FailureAction", "SuccessAction", "StartLimitAction", "JobTimeoutAction"} {
			if v := directives(t, u)["Unit"][k]; len(v) > 0 {
				t.Errorf("%s %s=%q: only homenode-fallback.service's checked ExecStart may reboot", u, k, v)
			}
		}
	}
	// Nor for homenode.service to finish starting: a crash-looping new
	// version never does, and the trial would never end.
	for _, a := range directives(t, "homenode-commit.service")["Unit"]["After"] {
		if strings.Contains(a, "homenode.service") {
			t.Errorf("homenode-commit.service After=%q: a homenode that restarts for ever would hold the commit step back for ever", a)
		}
	}
	// The commit unit adds no mount wait of its own: its StateDirectory=
	// needs the data partition, and a trial boot without it fails the
	// unit at once (then the fallback, which needs no mount, reboots:
	// TestFallbackNeedsNoDataPartition), not after a wait.
	if r := directives(t, "homenode-commit.service")["Unit"]["RequiresMountsFor"]; len(r) > 0 {
		t.Errorf("homenode-commit.service RequiresMountsFor=%q", r)
	}
}

// TestFallbackNeedsNoDataPartition: the fallback unit runs when the commit
// step failed, and on a trial boot whose data partition did not come up
// the commit step fails on that very mount. A fallback that needed the
// mount would fail with it ("Dependency failed for
// homenode-fallback.service", seen under QEMU) and leave the board on the
// trial system with no node. So it carries none of what makes systemd add
// a mount dependency (unit_add_exec_dependencies: StateDirectory= and its
// kin, WorkingDirectory= without "-", RootDirectory=, RequiresMountsFor=)
// nor an explicit one, and a path it may write on the data partition is
// optional ("-"), or the missing directory would fail its namespace.
// image/updatetest's scenario data-late shows it in the guest.
func TestFallbackNeedsNoDataPartition(t *testing.T) {
	d := directives(t, "homenode-fallback.service")
	for _, k := range []string{"StateDirectory", "CacheDirectory", "LogsDirectory", "RootDirectory", "RootImage"} {
		if v := d["Service"][k]; len(v) > 0 {
			t.Errorf("homenode-fallback.service %s=%q: adds RequiresMountsFor= on the data partition", k, v)
		}
	}
	for _, v := range d["Service"]["WorkingDirectory"] {
		if !strings.HasPrefix(v, "-") && v != "~" {
			t.Errorf("homenode-fallback.service WorkingDirectory=%q: adds a mount dependency", v)
		}
	}
	for _, k := range []string{"RequiresMountsFor", "Requires", "Requisite", "BindsTo", "PartOf", "After"} {
		for _, v := range d["Unit"][k] {
			for _, f := range strings.Fields(v) {
				if strings.HasSuffix(f, ".mount") || strings.HasPrefix(f, "/") || f == "local-fs.target" {
					t.Errorf("homenode-fallback.service %s=%q: needs a mount", k, v)
				}
			}
		}
	}
	for _, k := range []string{"ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths"} {
		for _, v := range d["Service"][k] {
			for _, f := range strings.Fields(v) {
				if strings.HasPrefix(f, "/var/lib/homenode") {
					t.Errorf("homenode-fallback.service %s=%s: without \"-\" the unit fails when the data partition is missing", k, f)
				}
			}
		}
	}
}

// TestFallbackDependenciesBySystemd asks systemd itself (`systemd --test`
// loads the units and dumps every dependency it derived, mount
// dependencies included) that the fallback unit requires no mount under
// /var/lib, while the commit unit, whose StateDirectory= is on the data
// partition, does: the fallback still runs when that mount failed.
func TestFallbackDependenciesBySystemd(t *testing.T) {
	bin := "/lib/systemd/systemd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("systemd not installed (apt-get install systemd): skipping")
	}
	dir := t.TempDir()
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--test", "--system", "--unit=homenode-fallback.service", "--log-target=console", "--no-pager")
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "HOME=/")
	if os.Geteuid() == 0 {
		// "Don't run test mode as root": as nobody, who must read the units.
		for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd --test: %v\n%s", err, out)
	}
	deps := func(unit string) []string {
		var lines []string
		in := false
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "\t-> Unit "):
				in = l == "\t-> Unit "+unit+":"
			case in:
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		if len(lines) == 0 {
			t.Fatalf("systemd --test dumped no %s:\n%s", unit, out)
		}
		return lines
	}
	onData := func(l string) bool {
		return strings.HasPrefix(l, "RequiresMountsFor: /var/lib") || strings.Contains(l, "var-lib-homenode.mount")
	}
	// The check sees the commit unit's mount dependency (it may fail on it).
	seen := false
	for _, l := range deps("homenode-commit.service") {
		seen = seen || strings.HasPrefix(l, "RequiresMountsFor: /var/lib/homenode")
	}
	if !seen {
		t.Errorf("systemd derived no RequiresMountsFor=/var/lib/homenode for homenode-commit.service: the dump is not read right")
	}
	for _, l := range deps("homenode-fallback.service") {
		if onData(l) {
			t.Errorf("homenode-fallback.service: systemd derived %q: a trial boot without its data partition would fail the fallback too", l)
		}
	}
}
