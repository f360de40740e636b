package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits are the shipped unit's memory limits (systemd/homenode.service).
const (
	GoMemLimit   = "320MiB"
	MemoryMax    = 512 << 20
	memBudgetRSS = MemoryMax // the node must stay under its cgroup limit
)

// TargetConfig says how to start the node under attack.
type TargetConfig struct {
	// Binary is the homenode binary.
	Binary string
	// Dir is a fresh directory for the node's data and socket.
	Dir string
	// Owner is the owner identity ("rpi…"); empty: the node waits for
	// pairing.
	Owner string
	// Set are extra `--set key=value` options.
	Set []string
	// Cgroup makes a memory cgroup with MemoryMax for the node when the
	// caller is root and cgroupfs allows; Target.Note says how it went.
	Cgroup bool
	// port is the libp2p TCP port, chosen at the first start and kept
	// across restarts so that clients find the node again.
	port int
}

// Target is a running homenode process.
type Target struct {
	cfg     TargetConfig
	cmd     *exec.Cmd
	Addr    string // a loopback multiaddr ending in /p2p/ID
	PeerID  string
	HTTP    string // host:port of the status page
	Socket  string // admin socket
	cgroup  string
	Note    string // what the cgroup setup said
	done    chan struct{}
	exitErr error

	mu       sync.Mutex
	logLines int
	tail     []string
	rssPeak  int64
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartTarget starts homenode and waits until it prints its address.
func StartTarget(ctx context.Context, cfg TargetConfig) (*Target, error) {
	port, err := freePort()
	if err == nil && cfg.port == 0 {
		cfg.port, err = freePort()
	}
	if err != nil {
		return nil, fmt.Errorf("attack.StartTarget: %w", err)
	}
	t := &Target{HTTP: fmt.Sprintf("127.0.0.1:%d", port), Socket: filepath.Join(cfg.Dir, "admin.sock"), done: make(chan struct{})}
	t.cfg = cfg
	args := []string{"run", "--config", "/dev/null", "--data-dir", filepath.Join(cfg.Dir, "data"),
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", cfg.port), "--http", t.HTTP, "--admin-socket", t.Socket,
		"--log-level", "info", "--set", "upnp=false", "--set", "relay=false"}
	if cfg.Owner != "" {
		args = append(args, "--owner", cfg.Owner)
	}
	for _, s := range cfg.Set {
		args = append(args, "--set", s)
	}
	bin, shArgs := cfg.Binary, args
	t.Note = "no memory cgroup asked for: GOMEMLIMIT only"
	if cfg.Cgroup {
		if cg, note := makeCgroup(cfg.Dir); cg != "" {
			t.cgroup = cg
			// The shell joins the cgroup and then becomes homenode, so the
			// node lives its whole life under the limit.
			bin = "/bin/sh"
			shArgs = append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg, cfg.Binary}, args...)
			t.Note = note
		} else {
			t.Note = note
		}
	}
	t.cmd = exec.Command(bin, shArgs...)
	t.cmd.Env = append(os.Environ(), "GOMEMLIMIT="+GoMemLimit)
	out, err := t.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errp, err := t.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := t.cmd.Start(); err != nil {
		t.removeCgroup()
		return nil, fmt.Errorf("attack.StartTarget: %w", err)
	}
	addrs := make(chan string, 16)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if a, ok := strings.CutPrefix(l, "address: "); ok {
				select {
				case addrs <- a:
				default:
				}
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(errp)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.mu.Lock()
			t.logLines++
			t.tail = append(t.tail, sc.Text())
			if len(t.tail) > 40 {
				t.tail = t.tail[len(t.tail)-40:]
			}
			t.mu.Unlock()
		}
	}()
	go func() {
		readers.Wait()
		t.exitErr = t.cmd.Wait()
		close(t.done)
	}()
	go t.sampleRSS()
	deadline := time.After(60 * time.Second)
	for t.Addr == "" {
		select {
		case a := <-addrs:
			if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
				t.Addr = a
			}
		case <-t.done:
			return nil, fmt.Errorf("attack.StartTarget: homenode exited: %v\n%s", t.exitErr, t.Tail())
		case <-deadline:
			t.Stop()
			return nil, fmt.Errorf("attack.StartTarget: homenode printed no address\n%s", t.Tail())
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	t.PeerID = t.Addr[strings.LastIndex(t.Addr, "/p2p/")+len("/p2p/"):]
	if err := t.waitHTTP(ctx); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

func (t *Target) waitHTTP(ctx context.Context) error {
	for i := 0; ; i++ {
		if _, err := t.Get(ctx, "/healthz", ""); err == nil {
			return nil
		}
		if i > 300 {
			return errors.New("attack: status page never answered")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.done:
			return fmt.Errorf("attack: homenode exited: %v", t.exitErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Get fetches path from the status page with the given Host header (""
// for the address itself) and returns the body of a 200 answer.
func (t *Target) Get(ctx context.Context, path, host string) ([]byte, error) {
	code, body, err := t.GetStatus(ctx, path, host)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return body, fmt.Errorf("GET %s: %d", path, code)
	}
	return body, nil
}

// GetStatus is Get returning the status code whatever it is.
func (t *Target) GetStatus(ctx context.Context, path, host string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.HTTP+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// HeapInuse reads go_memstats_heap_inuse_bytes from /metrics.
func (t *Target) HeapInuse(ctx context.Context) (int64, error) {
	b, err := t.Get(ctx, "/metrics", "")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, errors.New("attack: no go_memstats_heap_inuse_bytes in /metrics")
}

// Admin runs `homenode COMMAND ARGS... --admin-socket SOCKET`.
func (t *Target) Admin(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--admin-socket", t.Socket)
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, t.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), fmt.Errorf("homenode %v: %w: %s", args, err, e.String())
	}
	return o.String(), nil
}

// RSS is the node's resident set size now, in bytes.
func (t *Target) RSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (t *Target) sampleRSS() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		r := t.RSS()
		t.mu.Lock()
		t.rssPeak = max(t.rssPeak, r)
		t.mu.Unlock()
	}
}

// ResetPeak starts a new peak RSS measurement and returns the RSS now.
func (t *Target) ResetPeak() int64 {
	r := t.RSS()
	t.mu.Lock()
	t.rssPeak = r
	t.mu.Unlock()
	return r
}

// Peak is the highest RSS seen since ResetPeak.
func (t *Target) Peak() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rssPeak
}

// LogLines is the number of log lines the node has written.
func (t *Target) LogLines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.logLines
}

// Tail is the node's last log lines.
func (t *Target) Tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.tail, "\n")
}

// Alive reports whether the process still runs.
func (t *Target) Alive() bool {
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// Died says how the process ended ("" while it runs).
func (t *Target) Died() string {
	if t.Alive() {
		return ""
	}
	oom := ""
	if t.cgroup != "" {
		oom = " (memory cgroup: " + cgroupOOM(t.cgroup) + ")"
	}
	return fmt.Sprintf("homenode exited: %v%s", t.exitErr, oom)
}

// Stop interrupts the node and waits for it, then removes its cgroup.
func (t *Target) Stop() {
	if t.Alive() {
		_ = t.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-t.done:
		case <-time.After(30 * time.Second):
			_ = t.cmd.Process.Kill()
			<-t.done
		}
	}
	t.removeCgroup()
}

// Restart stops the node and starts it again from the same directory.
func (t *Target) Restart(ctx context.Context) (*Target, error) {
	t.Stop()
	return StartTarget(ctx, t.cfg)
}

func (t *Target) removeCgroup() {
	if t.cgroup != "" {
		_ = os.Remove(t.cgroup)
		t.cgroup = ""
	}
}
