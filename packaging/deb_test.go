package packaging_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/appliance"
)

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not installed (apt-get install dpkg; scripts/install-test-deps.sh does it as root): skipping the .deb build", c)
		}
	}
}

// buildDeb runs build-deb.sh with a stand-in executable for the daemon:
// what is tested is the package's layout, metadata and scripts, and a
// cold cross-build of the daemon would cost minutes.
func buildDeb(t *testing.T, arch string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "homenode")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho homenode test\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("./build-deb.sh", "-a", arch, "-b", bin, "-v", "1.2.3-test", "-o", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if want := filepath.Join(dir, "homenode_1.2.3-test_"+arch+".deb"); deb != want {
		t.Fatalf("build-deb.sh printed %q, want %q", deb, want)
	}
	return deb
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDebContents(t *testing.T) {
	need(t, "dpkg-deb", "md5sum", "gzip")
	for _, arch := range []string{"arm64", "armhf", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			deb := buildDeb(t, arch)
			// path -> mode and owner as dpkg-deb -c prints them.
			files := map[string]string{}
			for _, line := range strings.Split(dpkgDeb(t, "-c", deb), "\n") {
				f := strings.Fields(line)
				if len(f) >= 6 {
					files[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
				}
			}
			want := []struct{ path, modeOwner string }{
				{"/usr/bin/homenode", "-rwxr-xr-x root/root"},
				{"/lib/systemd/system/homenode.service", "-rw-r--r-- root/root"},
				{"/lib/systemd/system/homenode-pairing-console.service", "-rw-r--r-- root/root"},
				{"/lib/systemd/system/homenode-commit.service", "-rw-r--r-- root/root"},
				{"/lib/systemd/system/homenode-fallback.service", "-rw-r--r-- root/root"},
				{"/lib/systemd/system/homenode-update.service", "-rw-r--r-- root/root"},
				{"/lib/systemd/system/homenode-update.path", "-rw-r--r-- root/root"},
				{"/usr/lib/udev/rules.d/60-homenode.rules", "-rw-r--r-- root/root"},
				{"/usr/lib/sysusers.d/homenode.conf", "-rw-r--r-- root/root"},
				{"/usr/lib/sysctl.d/60-homenode.conf", "-rw-r--r-- root/root"},
				{"/etc/homenode/homenode.toml", "-rw-r--r-- root/root"},
				{"/usr/share/doc/homenode/copyright", "-rw-r--r-- root/root"},
				{"/usr/share/doc/homenode/changelog.Debian.gz", "-rw-r--r-- root/root"},
			}
			for _, w := range want {
				if got, ok := files[w.path]; !ok {
					t.Errorf("%s missing from the package", w.path)
				} else if got != w.modeOwner {
					t.Errorf("%s is %q, want %q", w.path, got, w.modeOwner)
				}
			}

			for field, want := range map[string]string{"Package": "homenode", "Version": "1.2.3-test", "Architecture": arch} {
				if got := strings.TrimSpace(dpkgDeb(t, "-f", deb, field)); got != want {
					t.Errorf("control %s = %q, want %q", field, got, want)
				}
			}
			ctl := t.TempDir()
			dpkgDeb(t, "-e", deb, ctl)
			conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(conffiles)) != "/etc/homenode/homenode.toml" {
				t.Errorf("conffiles = %q, want the default config only", conffiles)
			}
			for _, s := range []struct{ script, must string }{
				{"postinst", "deb-systemd-helper enable"},
				{"postinst", "systemd-sysusers homenode.conf"},
				{"postinst", "deb-systemd-invoke start homenode.service"},
				{"prerm", "deb-systemd-invoke stop"},
				{"postrm", "rm -rf /var/lib/homenode"},
			} {
				p := filepath.Join(ctl, s.script)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), s.must) {
					t.Errorf("%s does not contain %q", s.script, s.must)
				}
				if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n: %v\n%s", s.script, err, out)
				}
				if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o755 {
					t.Errorf("%s mode %v, want 0755", s.script, fi.Mode().Perm())
				}
			}
			// md5sums must cover the shipped files but not the conffile.
			sums, err := os.ReadFile(filepath.Join(ctl, "md5sums"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(sums), "usr/bin/homenode") || strings.Contains(string(sums), "etc/homenode") {
				t.Errorf("md5sums:\n%s", sums)
			}
		})
	}
}

// TestDefaultConfig: the conffile documents every key of appliance.Config
// and sets none, so the daemon's defaults apply until someone edits it;
// uncommented, it loads and validates, and equals the daemon's defaults.
func TestDefaultConfig(t *testing.T) {
	b, err := os.ReadFile("homenode.toml")
	if err != nil {
		t.Fatal(err)
	}
	var uncommented strings.Builder
	keys := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] != '#' {
			t.Errorf("uncommented line %q", line)
			continue
		}
		if k, _, ok := strings.Cut(line[1:], " = "); ok && !strings.Contains(k, " ") {
			keys[k] = true
			uncommented.WriteString(line[1:] + "\n")
		}
	}
	for _, k := range appliance.Keys() {
		if !keys[k] {
			t.Errorf("key %s not documented in homenode.toml", k)
		}
	}
	path := filepath.Join(t.TempDir(), "homenode.toml")
	if err := os.WriteFile(path, []byte(uncommented.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := appliance.Defaults()
	if err := cfg.LoadFile(path, true); err != nil {
		t.Fatalf("the uncommented defaults do not load: %v\n%s", err, uncommented.String())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the uncommented defaults do not validate: %v", err)
	}
	// Compared as printed: an empty list in the file is a non-nil slice.
	if got, want := fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", appliance.Defaults()); got != want {
		t.Errorf("the documented defaults differ from the daemon's:\n got %s\nwant %s", got, want)
	}
}

// TestClientDeb: the redpanda client is its own package: the command and
// its documents, no service, no maintainer scripts.
func TestClientDeb(t *testing.T) {
	need(t, "dpkg-deb", "md5sum", "gzip")
	dir := t.TempDir()
	bin := filepath.Join(dir, "redpanda")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho redpanda test\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("./build-client-deb.sh", "-a", "arm64", "-b", bin, "-v", "1.2.3-test", "-o", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("build-client-deb.sh: %v\n%s", err, out)
	}
	deb := filepath.Join(dir, "redpanda-client_1.2.3-test_arm64.deb")
	list := dpkgDeb(t, "-c", deb)
	for _, want := range []string{"./usr/bin/redpanda", "./usr/share/doc/redpanda-client/copyright"} {
		if !strings.Contains(list, want) {
			t.Errorf("%s missing:\n%s", want, list)
		}
	}
	for _, not := range []string{"homenode", "systemd"} {
		if strings.Contains(list, not) {
			t.Errorf("the client package holds %s files:\n%s", not, list)
		}
	}
	if got := strings.TrimSpace(dpkgDeb(t, "-f", deb, "Package")); got != "redpanda-client" {
		t.Errorf("Package %q", got)
	}
}
