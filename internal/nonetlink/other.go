//go:build !(linux && (amd64 || arm64))

package nonetlink

import (
	"errors"
	"os"
	"os/exec"
)

// Env is the variable a re-executed test binary finds to install the
// filter.
const Env = "REDPANDA_NO_NETLINK"

// ErrUnsupported: the filter is written for Linux on amd64 and arm64.
var ErrUnsupported = errors.New("nonetlink: only on linux/amd64 and linux/arm64")

// Install fails here: there is no filter for this system.
func Install() error { return ErrUnsupported }

// Check fails here.
func Check() error { return ErrUnsupported }

// InstallIfAsked fails when asked, here.
func InstallIfAsked() (bool, error) {
	if os.Getenv(Env) == "" {
		return false, nil
	}
	return false, ErrUnsupported
}

// Command runs name with args; the child fails to install the filter.
func Command(self, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(self, append([]string{"--"}, append([]string{name}, args...)...)...)
	cmd.Env = append(os.Environ(), Env+"=exec:"+name)
	return cmd
}
