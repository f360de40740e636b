//go:build linux && (amd64 || arm64)

package nonetlink

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	if on, err := InstallIfAsked(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	} else if on {
		// The child: report what a phone's Go code sees.
		if err := Check(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(4)
		}
		_, err := net.Interfaces()
		os.Stdout.WriteString("interfaces: " + errString(err) + "\n")
		_, err = net.InterfaceAddrs()
		os.Stdout.WriteString("addrs: " + errString(err) + "\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// TestFilter: under the filter, listing interfaces fails as on Android
// 11+, and exec'd programs inherit it; without it, it works.
func TestFilter(t *testing.T) {
	if err := Check(); err == nil {
		t.Fatal("netlink is closed in the parent test process")
	}
	if _, err := net.Interfaces(); err != nil {
		t.Fatalf("interfaces without the filter: %v", err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), Env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"interfaces: route ip+net: netlinkrib: permission denied", "addrs: route ip+net: netlinkrib: permission denied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child said %q, want %q", out, want)
		}
	}
	// An exec'd program inherits it: ip(8) lists links over netlink.
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip(8) to check that exec inherits the filter")
	}
	if out, err := exec.Command(ip, "link").CombinedOutput(); err != nil {
		t.Skipf("ip link fails even without the filter: %v\n%s", err, out)
	}
	out, err = Command(os.Args[0], ip, "link").CombinedOutput()
	if err == nil {
		t.Fatalf("ip link under the filter worked:\n%s", out)
	}
	t.Logf("ip link under the filter: %v: %s", err, strings.TrimSpace(string(out)))
}
