package main

import (
	"bufio"
	"context"
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
	gosync "sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// The capacity scenario runs the node in a child process (this binary
// again, selected by roleEnv) so that its RSS and CPU are its own.
const (
	roleEnv     = "RPBENCH_ROLE"
	roleNode    = "node"
	dirEnv      = "RPBENCH_DIR"
	capacityEnv = "RPBENCH_CAPACITY"
	// heapEnv names a file for the node process's heap profile.
	heapEnv = "RPBENCH_NODE_HEAPPROFILE"
	// clientsPerChannel: idle clients come in groups sharing a channel,
	// as friends do.
	clientsPerChannel = 10
	// joinConcurrency bounds registrations in flight.
	joinConcurrency = 32
)

// runNodeChild is the child: start a node, print its address, answer
// "stats" lines on stdin with a STATS line (goroutines, heap and stack
// bytes), serve until stdin closes.
func runNodeChild() error {
	capacity, err := strconv.Atoi(os.Getenv(capacityEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", capacityEnv, err)
	}
	n, err := startNode(context.Background(), os.Getenv(dirEnv), nodeOpts{capacity: capacity}, quietLogger())
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Printf("ADDR %s\n", n.Addrs()[0])
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			fmt.Printf("STATS %d %d %d\n", runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse)
		}
	}
	if f := os.Getenv(heapEnv); f != "" {
		// Where the node's memory per client goes, with every client still
		// connected (the parent closes stdin before its clients).
		out, err := os.Create(f)
		if err != nil {
			return err
		}
		defer out.Close()
		runtime.GC()
		return pprof.WriteHeapProfile(out)
	}
	return nil
}

type childNode struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	info    peer.AddrInfo
	stats   chan childStats
	stopped gosync.Once
}

// childStats is the node process's own account of where its memory is.
type childStats struct {
	goroutines          int
	heapInuse, stackUse float64 // bytes
}

// stats asks the child for its goroutines, heap and stacks.
func (c *childNode) askStats(ctx context.Context) (childStats, error) {
	if _, err := io.WriteString(c.in, "stats\n"); err != nil {
		return childStats{}, err
	}
	select {
	case st := <-c.stats:
		return st, nil
	case <-ctx.Done():
		return childStats{}, ctx.Err()
	case <-time.After(30 * time.Second):
		return childStats{}, errors.New("node process sent no stats in 30 s")
	}
}

func startChildNode(ctx context.Context, dir string, capacity int) (*childNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+roleNode, dirEnv+"="+dir, fmt.Sprintf("%s=%d", capacityEnv, capacity))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childNode{cmd: cmd, in: in, stats: make(chan childStats, 1)}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				line <- a
			}
			if a, ok := strings.CutPrefix(sc.Text(), "STATS "); ok {
				var st childStats
				if _, err := fmt.Sscan(a, &st.goroutines, &st.heapInuse, &st.stackUse); err == nil {
					c.stats <- st
				}
			}
		}
	}()
	select {
	case a := <-line:
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
		c.info = *pi
		return c, nil
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, errors.New("node process printed no address in 30 s")
	}
}

// stop closes the child's stdin (it shuts down cleanly) and waits, killing
// it by its own PID if it does not exit.
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

// runCapacity ramps registered idle clients on one node in steps until
// the count asked for or the first failure, which names the limit hit.
func runCapacity(ctx context.Context, p Params) (Result, error) {
	var r Result
	dir, err := os.MkdirTemp("", "rpbench-capacity-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	child, err := startChildNode(ctx, filepath.Join(dir, "node"), p.Clients)
	if err != nil {
		return r, fmt.Errorf("node process: %w", err)
	}
	defer child.stop()
	pid := child.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond) // let the node settle before the base figure
	base, err := rssKiB(pid)
	if err != nil {
		return r, err
	}
	baseStats, err := child.askStats(ctx)
	if err != nil {
		return r, err
	}
	shared, err := store.Open(filepath.Join(dir, "clients.db"), store.Options{Logger: p.Logger})
	if err != nil {
		return r, err
	}
	defer shared.Close()

	var (
		mu      gosync.Mutex
		clients []*lite
		limit   error
		lastRSS = base
	)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	var ch channel.ID
	joinStart := time.Now()
	for len(clients) < p.Clients && limit == nil && ctx.Err() == nil {
		step := min(p.ClientStep, p.Clients-len(clients))
		sem := make(chan struct{}, joinConcurrency)
		var wg gosync.WaitGroup
		for i := range step {
			if (len(clients)+i)%clientsPerChannel == 0 {
				w, err := newWriter()
				if err != nil {
					return r, err
				}
				ch = w.key.ID()
			}
			myCh := ch
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				c, err := newLite(dir, shared, p.Logger)
				if err == nil {
					_, err = c.join(jctx, child.info, myCh)
					if err != nil {
						c.close()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if limit == nil {
						limit = err
					}
					return
				}
				clients = append(clients, c)
			}()
		}
		wg.Wait()
		if rss, err := rssKiB(pid); err == nil {
			lastRSS = rss
		}
	}
	joinTime := time.Since(joinStart)
	n := len(clients)
	r.add("registered idle clients", float64(n), "clients")
	r.add("registrations", float64(n)/joinTime.Seconds(), "reg/s")
	r.add("node RSS, no clients", base/1024, "MiB")
	r.add(fmt.Sprintf("node RSS, %d clients", n), lastRSS/1024, "MiB")
	perClient := 0.0
	if n > 0 {
		perClient = (lastRSS - base) / float64(n)
	}
	r.add("node RSS per client", perClient, "KiB")

	// Idle: nothing is sent; what the node burns is its own timers.
	time.Sleep(time.Second) // let the last sessions' hello and reconcile finish
	t0, _ := cpuTicks(pid)
	start := time.Now()
	select {
	case <-time.After(p.IdleFor):
	case <-ctx.Done():
	}
	t1, _ := cpuTicks(pid)
	r.add("node CPU while idle (10 ms ticks)", (t1-t0)/100/time.Since(start).Seconds()*100, "% of a core")
	// Where the RSS per client goes, from the node's own runtime.
	if st, err := child.askStats(ctx); err == nil && n > 0 {
		r.add("node goroutines per client", float64(st.goroutines-baseStats.goroutines)/float64(n), "")
		r.add("node heap in use per client", (st.heapInuse-baseStats.heapInuse)/1024/float64(n), "KiB")
		r.add("node goroutine stacks per client", (st.stackUse-baseStats.stackUse)/1024/float64(n), "KiB")
	}
	child.stop() // before the clients go, for the heap profile
	r.target(">= 5000 idle registered clients at <= 100 KiB RSS each", n >= 5000 && perClient <= 100)
	switch {
	case limit != nil:
		r.Limit = "first failure at " + strconv.Itoa(n) + " clients: " + limit.Error()
	case ctx.Err() != nil:
		r.Limit = "scenario time bound reached"
	default:
		r.Limit = fmt.Sprintf("none hit: stopped at the %d clients asked for (node capacity, conns and FDs were configured for them)", p.Clients)
	}
	return r, nil
}
