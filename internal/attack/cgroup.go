package attack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// makeCgroup makes a memory cgroup limited to MemoryMax for the node and
// returns its directory, or "" and why not. It prefers cgroup v2
// (memory.max) and falls back to a v1 memory hierarchy
// (memory.limit_in_bytes) where the machine mounts one.
func makeCgroup(dir string) (string, string) {
	if os.Geteuid() != 0 {
		return "", "not root: no memory cgroup, GOMEMLIMIT only"
	}
	name := fmt.Sprintf("rpattack-%d-%s", os.Getpid(), filepath.Base(dir))
	own, _ := os.ReadFile("/proc/self/cgroup")
	if ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(ctl), "memory") {
		base := "/sys/fs/cgroup"
		for _, l := range strings.Split(string(own), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				base = filepath.Join(base, p)
			}
		}
		cg := filepath.Join(base, name)
		if err := os.Mkdir(cg, 0o755); err != nil {
			return "", "cgroup v2: " + err.Error()
		}
		if err := os.WriteFile(filepath.Join(cg, "memory.max"), []byte(strconv.Itoa(MemoryMax)), 0o644); err != nil {
			os.Remove(cg)
			return "", "cgroup v2 memory.max: " + err.Error()
		}
		_ = os.WriteFile(filepath.Join(cg, "memory.swap.max"), []byte("0"), 0o644)
		return cg, "cgroup v2 memory.max=512M"
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		base := "/sys/fs/cgroup/memory"
		for _, l := range strings.Split(string(own), "\n") {
			if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "memory" {
				base = filepath.Join(base, f[2])
			}
		}
		cg := filepath.Join(base, name)
		if err := os.Mkdir(cg, 0o755); err != nil {
			return "", "cgroup v1: " + err.Error()
		}
		if err := os.WriteFile(filepath.Join(cg, "memory.limit_in_bytes"), []byte(strconv.Itoa(MemoryMax)), 0o644); err != nil {
			os.Remove(cg)
			return "", "cgroup v1 memory.limit_in_bytes: " + err.Error()
		}
		return cg, "cgroup v1 memory.limit_in_bytes=512M (no cgroup v2 memory controller here)"
	}
	return "", "no writable memory cgroup: GOMEMLIMIT only"
}

// cgroupOOM says whether the cgroup's OOM killer fired.
func cgroupOOM(cg string) string {
	for _, f := range []string{"memory.events", "memory.oom_control"} {
		if b, err := os.ReadFile(filepath.Join(cg, f)); err == nil {
			return strings.Join(strings.Fields(string(b)), " ")
		}
	}
	return "unknown"
}
