package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// Nodes run in child processes (this binary again, selected by roleEnv),
// as they do in the field, where every node is a process of its own: its
// RSS and CPU are its own, and its garbage collector marks its own heap,
// not the heaps of the hundred clients driving it. With both in one
// process, every relayed message in the slowest 1 % was sent during a GC
// cycle that marked the clients' stores and hosts too.
const (
	roleEnv     = "RPBENCH_ROLE"
	roleNode    = "node"
	dirEnv      = "RPBENCH_DIR"
	capacityEnv = "RPBENCH_CAPACITY"
	peersEnv    = "RPBENCH_PEERS" // comma-separated multiaddrs to dial
	// heapEnv names a file for the node process's heap profile, written
	// when it is told to stop.
	heapEnv = "RPBENCH_NODE_HEAPPROFILE"
	// cpuProfEnv and traceEnv name files for the node process's CPU
	// profile and execution trace (rpbench -cpuprofile and -trace pass
	// them on, suffixed with the node's name).
	cpuProfEnv = "RPBENCH_NODE_CPUPROFILE"
	traceEnv   = "RPBENCH_NODE_TRACE"
)

// childProfile and childTrace, when set by -cpuprofile and -trace, give
// each node process a profile and trace of its own: FILE.NAME.
var childProfile, childTrace string

// runNodeChild is the node process: start a node, print its address, then
// answer one command per line on stdin (see childNode.ask) until stdin
// closes.
func runNodeChild() (err error) {
	capacity, err := strconv.Atoi(os.Getenv(capacityEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", capacityEnv, err)
	}
	stopProfiles, err := startProfiles(os.Getenv(cpuProfEnv), os.Getenv(traceEnv))
	if err != nil {
		return err
	}
	defer stopProfiles()
	var peers []string
	if s := os.Getenv(peersEnv); s != "" {
		peers = strings.Split(s, ",")
	}
	ctx := context.Background()
	n, err := startNode(ctx, os.Getenv(dirEnv), nodeOpts{capacity: capacity, peers: peers}, quietLogger())
	if err != nil {
		return err
	}
	defer n.Close()
	out := &childOut{w: bufio.NewWriter(os.Stdout)}
	out.line("ADDR %s", n.Addrs()[0])
	stopFlush := out.flushEvery(100 * time.Millisecond)
	defer stopFlush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		reply, err := childCommand(ctx, n, out, strings.Fields(in.Text()))
		if err != nil {
			out.line("E %s", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			out.line("R %s", reply)
		}
	}
	if f := os.Getenv(heapEnv); f != "" {
		// Where the node's memory per client goes, with every client still
		// connected (the parent closes stdin before its clients).
		w, err := os.Create(f)
		if err != nil {
			return err
		}
		defer w.Close()
		runtime.GC()
		return pprof.WriteHeapProfile(w)
	}
	return nil
}

// childCommand runs one command in the node process.
func childCommand(ctx context.Context, n *node.Node, out *childOut, cmd []string) (string, error) {
	if len(cmd) == 0 {
		return "", errors.New("empty command")
	}
	args := cmd[1:]
	switch cmd[0] {
	case "stats": // goroutines, heap in use, stacks in use (bytes)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return fmt.Sprintf("%d %d %d", runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse), nil
	case "sigs": // signature checks, in batches, batches, largest batch
		st := n.Sync.SignatureStats()
		return fmt.Sprintf("%d %d %d %d", st.Checks, st.Batched, st.Batches, st.Largest), nil
	case "serve": // serve CHANNEL-HEX...
		chs := make([]channel.ID, len(args))
		for i, a := range args {
			b, err := hex.DecodeString(a)
			if err != nil || len(b) != len(chs[i]) {
				return "", fmt.Errorf("serve: bad channel %q", a)
			}
			copy(chs[i][:], b)
		}
		n.Serve(chs...)
		return "ok", nil
	case "hello": // hello PEER: hello frames received from PEER
		p, err := peer.Decode(strings.Join(args, ""))
		if err != nil {
			return "", err
		}
		return strconv.FormatUint(n.Sync.Stats(p).FramesIn["hello"], 10), nil
	case "bytes": // bytes [EXCEPT-PEER]: sync bytes in and out over every peer but one
		var total uint64
		for _, p := range n.Sync.Peers() {
			if len(args) > 0 && p.String() == args[0] {
				continue
			}
			st := n.Sync.Stats(p)
			total += st.BytesIn + st.BytesOut
		}
		return strconv.FormatUint(total, 10), nil
	case "watch": // then one "S ID-HEX UNIX-NANOS" line per message stored
		sub, _ := n.Sync.Subscribe(1 << 12)
		go func() {
			for st := range sub {
				out.line("S %x %d", st.ID[:], time.Now().UnixNano())
			}
		}()
		return "ok", nil
	case "publish": // publish WRITERS MESSAGES BODY: seconds to publish in the node, and CPU seconds
		if len(args) != 3 {
			return "", errors.New("publish WRITERS MESSAGES BODY")
		}
		var v [3]int
		for i, a := range args {
			var err error
			if v[i], err = strconv.Atoi(a); err != nil {
				return "", err
			}
		}
		envs, chs, err := sealIngest(v[1], v[2])
		if err != nil {
			return "", err
		}
		n.Serve(chs...)
		cpu0 := selfCPU()
		took, err := parallel(ctx, v[0], envs, func(_ int, e *channel.Envelope) error {
			_, err := n.Sync.Publish(ctx, e)
			return err
		})
		return fmt.Sprintf("%f %f", took.Seconds(), (selfCPU() - cpu0).Seconds()), err
	}
	return "", fmt.Errorf("unknown command %q", cmd[0])
}

// childOut serializes the node process's stdout lines; events are
// flushed in batches (they carry their own time), replies at once.
type childOut struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *childOut) line(format string, a ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", a...)
	if format[0] != 'S' {
		o.w.Flush()
	}
}

func (o *childOut) flushEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.mu.Lock()
				o.w.Flush()
				o.mu.Unlock()
			}
		}
	}()
	return func() { close(done) }
}

// childNode is the parent's handle on a node process.
type childNode struct {
	name    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	info    peer.AddrInfo
	addr    string // the multiaddr it printed, with /p2p/
	replies chan string
	askMu   sync.Mutex
	onStore func(id channel.MessageID, at time.Time) // set before "watch"
	stopped sync.Once
}

type childOpts struct {
	name     string // names its profile and trace files
	capacity int
	peers    []string
}

func startChild(ctx context.Context, dir string, o childOpts) (*childNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+roleNode, dirEnv+"="+dir,
		fmt.Sprintf("%s=%d", capacityEnv, o.capacity), peersEnv+"="+strings.Join(o.peers, ","))
	if childProfile != "" {
		cmd.Env = append(cmd.Env, cpuProfEnv+"="+childProfile+"."+o.name)
	}
	if childTrace != "" {
		cmd.Env = append(cmd.Env, traceEnv+"="+childTrace+"."+o.name)
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childNode{name: o.name, cmd: cmd, in: in, replies: make(chan string, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "S "):
				c.event(l[2:])
			case strings.HasPrefix(l, "ADDR "):
				addr <- l[5:]
			case strings.HasPrefix(l, "R "), strings.HasPrefix(l, "E "):
				c.replies <- l
			}
		}
		close(c.replies)
	}()
	select {
	case a := <-addr:
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			c.stop()
			return nil, err
		}
		pi, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.info, c.addr = *pi, a
		return c, nil
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("node process %s printed no address in 30 s", o.name)
	}
}

func (c *childNode) event(s string) {
	f := strings.Fields(s)
	if len(f) != 2 || c.onStore == nil {
		return
	}
	b, err := hex.DecodeString(f[0])
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	var id channel.MessageID
	if err != nil || err2 != nil || len(b) != len(id) {
		return
	}
	copy(id[:], b)
	c.onStore(id, time.Unix(0, ns))
}

// ask sends one command and returns its reply.
func (c *childNode) ask(ctx context.Context, format string, a ...any) (string, error) {
	c.askMu.Lock()
	defer c.askMu.Unlock()
	if _, err := fmt.Fprintf(c.in, format+"\n", a...); err != nil {
		return "", fmt.Errorf("node process %s: %w", c.name, err)
	}
	select {
	case l, ok := <-c.replies:
		if !ok {
			return "", fmt.Errorf("node process %s exited", c.name)
		}
		if e, isErr := strings.CutPrefix(l, "E "); isErr {
			return "", fmt.Errorf("node process %s: %s", c.name, e)
		}
		return l[2:], nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(5 * time.Minute):
		return "", fmt.Errorf("node process %s did not answer %q", c.name, format)
	}
}

func (c *childNode) askUint(ctx context.Context, format string, a ...any) (uint64, error) {
	s, err := c.ask(ctx, format, a...)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// childStats is the node process's own account of where its memory is.
type childStats struct {
	goroutines          int
	heapInuse, stackUse float64 // bytes
}

// askStats asks the child for its goroutines, heap and stacks.
func (c *childNode) askStats(ctx context.Context) (childStats, error) {
	var st childStats
	s, err := c.ask(ctx, "stats")
	if err != nil {
		return st, err
	}
	_, err = fmt.Sscan(s, &st.goroutines, &st.heapInuse, &st.stackUse)
	return st, err
}

func (c *childNode) serve(ctx context.Context, chs ...channel.ID) error {
	hexes := make([]string, len(chs))
	for i, ch := range chs {
		hexes[i] = hex.EncodeToString(ch[:])
	}
	_, err := c.ask(ctx, "serve %s", strings.Join(hexes, " "))
	return err
}

// cpu is the process's CPU time so far.
func (c *childNode) cpu() time.Duration {
	t, _ := cpuTicks(c.cmd.Process.Pid)
	return time.Duration(t * float64(10*time.Millisecond))
}

// stop closes the child's stdin (it shuts down cleanly) and waits, killing
// it if it does not exit.
func (c *childNode) stop() { c.stopped.Do(c.doStop) }

func (c *childNode) doStop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// rssKiB reads VmRSS of pid.
func rssKiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuTicks reads utime+stime of pid, in clock ticks (1/100 s on Linux).
func cpuTicks(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}
