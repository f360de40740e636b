package fieldkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Binaries are the built homenode and redpanda.
type Binaries struct {
	Dir      string
	Homenode string
	Redpanda string
}

// Build builds homenode and redpanda from the module that holds the
// current directory into dir, once for a test binary's run (call it from
// TestMain, which has no testing.T).
func Build(dir string) (*Binaries, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("fieldkit.Build: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return nil, errors.New("fieldkit.Build: not inside a Go module")
	}
	b := &Binaries{Dir: dir, Homenode: filepath.Join(dir, "homenode"), Redpanda: filepath.Join(dir, "redpanda")}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/homenode", "./cmd/redpanda")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fieldkit.Build: go build: %w\n%s", err, out)
	}
	return b, nil
}

// FreePort is a loopback port free for both TCP and UDP at the moment of
// the call (a node listens with TCP and QUIC on one port, as on 4001).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("fieldkit: no loopback port free for TCP and UDP")
	return 0
}
