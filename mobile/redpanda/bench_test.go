package redpanda

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	gostrings "strings"
	"testing"
	"time"
)

// BenchmarkResumeCatchUp measures the time from Resume to the Listener's
// first message of those posted while the phone was paused: phone A
// pauses, B posts, A resumes (b.N times). Its baseline, in the same
// run: the time from B's Send to A's Listener while A is connected (a
// live message). It reports both and resume/live, what waking up costs
// over a message that arrives while the app is open.
//
//	go test -run '^$' -bench ResumeCatchUp -benchtime 20x ./mobile/redpanda
func BenchmarkResumeCatchUp(b *testing.B) {
	a, bb := open(b, "a"), open(b, "b")
	n := startNode(b, a.ID())
	ra := newRecorder()
	a.SetListener(ra)
	if _, err := a.AddNode(n.Addrs()[0]); err != nil {
		b.Fatal(err)
	}
	if err := a.Connect(0, nil); err != nil {
		b.Fatal(err)
	}
	key, err := a.CreateChannel("chat")
	if err != nil {
		b.Fatal(err)
	}
	chain, err := a.IssueTicket(bb.ID(), 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bb.SetTicket(chain); err != nil {
		b.Fatal(err)
	}
	if _, err := bb.JoinChannel("chat", key); err != nil {
		b.Fatal(err)
	}
	if err := bb.Connect(0, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total, live time.Duration
	for i := range b.N {
		b.StopTimer()
		before := ra.count("chat", false)
		start := time.Now()
		if r, err := bb.Send("chat", fmt.Sprintf("live %d", i), 0, nil); err != nil || !r.Delivered {
			b.Fatalf("send: %v", err)
		}
		ra.waitFor(b, "the live message", func(ms []*Message, _ []*Event) bool { return count(ms, "chat", false) > before })
		live += time.Since(start)
		if err := a.Pause(); err != nil {
			b.Fatal(err)
		}
		if r, err := bb.Send("chat", fmt.Sprintf("missed %d", i), 0, nil); err != nil || !r.Delivered {
			b.Fatalf("send: %v", err)
		}
		before = ra.count("chat", false)
		b.StartTimer()
		start = time.Now()
		if err := a.Resume(0, nil); err != nil {
			b.Fatal(err)
		}
		ra.waitFor(b, "the missed message", func(ms []*Message, _ []*Event) bool { return count(ms, "chat", false) > before })
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/resume")
	b.ReportMetric(float64(live.Microseconds())/1000/float64(b.N), "ms/live")
	b.ReportMetric(float64(total)/float64(live), "resume/live")
}

// idleWindow is how long BenchmarkPhoneIdle watches each state.
func idleWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("REDPANDA_IDLE_WINDOW")); err == nil {
		return d
	}
	return time.Minute
}

// BenchmarkPhoneIdle measures what an idle phone client costs: a child
// process holds one client, connected to a node (in this process) with
// one channel, and then paused; for each state it reports the child's
// RSS and its threads' context switches per minute (every wake-up of a
// sleeping thread is one). The child is this test binary, so nothing but
// the client and the Go runtime runs in it.
//
// Two more children of the same binary run beside it the whole time, as
// baselines measured in the same run: one holds no client (the Go
// runtime alone), one only a 500 ms ticker (what keepConnected's
// polling, before it waited for events, cost on top of the runtime). It
// reports connected/paused, connected/runtime, and poll/connected: by
// how much the old polling would raise the connected figure.
//
//	go test -run '^$' -bench PhoneIdle -benchtime 1x ./mobile/redpanda
//	(REDPANDA_IDLE_WINDOW=5m for a longer look at each state)
func BenchmarkPhoneIdle(b *testing.B) {
	home := filepath.Join(b.TempDir(), "phone")
	c, err := Open(&Options{Home: home, Create: true})
	if err != nil {
		b.Fatal(err)
	}
	id := c.ID()
	c.Close()
	n := startNode(b, id)
	for range b.N {
		idle, ticker := startBaseline(b, "idle"), startBaseline(b, "ticker")
		i0, t0 := switches(b, idle), switches(b, ticker)
		start := time.Now()
		var conn, paused float64
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdlePhoneChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "REDPANDA_CHILD_HOME="+home, "REDPANDA_CHILD_NODE="+n.Addrs()[0], "REDPANDA_IDLE_CHILD=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		expect := func(want string) {
			for lines.Scan() {
				if lines.Text() == want {
					return
				}
			}
			b.Fatalf("child ended before %q", want)
		}
		pid := cmd.Process.Pid
		watch := func(state string) float64 {
			time.Sleep(5 * time.Second) // let the state settle
			s0 := switches(b, pid)
			time.Sleep(idleWindow())
			s1 := switches(b, pid)
			perMin := float64(s1-s0) / idleWindow().Minutes()
			rss, anon := memKiB(b, pid, "VmRSS"), memKiB(b, pid, "RssAnon")
			b.ReportMetric(perMin, "wakeups/min-"+state)
			b.ReportMetric(float64(rss)/1024, "RSS-MiB-"+state)
			b.ReportMetric(float64(anon)/1024, "anonRSS-MiB-"+state)
			b.Logf("%s: %.0f wake-ups a minute, RSS %.1f MiB (anonymous %.1f MiB)", state, perMin, float64(rss)/1024, float64(anon)/1024)
			return perMin
		}
		expect("connected")
		conn = watch("connected")
		fmt.Fprintln(stdin, "pause")
		expect("paused")
		paused = watch("paused")
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("child: %v", err)
		}
		mins := time.Since(start).Minutes()
		idlePerMin := float64(switches(b, idle)-i0) / mins
		tickerPerMin := float64(switches(b, ticker)-t0) / mins
		b.ReportMetric(idlePerMin, "wakeups/min-runtime")
		b.ReportMetric(tickerPerMin, "wakeups/min-500ms-ticker")
		b.ReportMetric(conn/max(paused, 1), "connected/paused")
		b.ReportMetric(conn/max(idlePerMin, 1), "connected/runtime")
		b.ReportMetric((conn+tickerPerMin-idlePerMin)/max(conn, 1), "with-poll/connected")
		b.Logf("baselines: the Go runtime alone %.0f wake-ups a minute, with a 500 ms ticker %.0f", idlePerMin, tickerPerMin)
	}
}

// startBaseline starts a baseline child of BenchmarkPhoneIdle (kind
// "idle" or "ticker"), ended with the benchmark, and returns its pid.
func startBaseline(b *testing.B, kind string) int {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleBaselineChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REDPANDA_BASELINE_CHILD="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("baseline child %s: %v", kind, err)
		}
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("baseline child %s did not start", kind)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	time.Sleep(2 * time.Second) // past the test framework's start
	return cmd.Process.Pid
}

// TestIdleBaselineChild is a baseline of BenchmarkPhoneIdle: the Go
// runtime with nothing to do ("idle"), or with a 500 ms ticker whose
// ticks do nothing ("ticker"); it ends when its stdin closes.
func TestIdleBaselineChild(t *testing.T) {
	kind := os.Getenv("REDPANDA_BASELINE_CHILD")
	if kind == "" {
		t.Skip("run by BenchmarkPhoneIdle")
	}
	if kind == "ticker" {
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		go func() {
			for range tk.C {
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestIdlePhoneChild is the phone of BenchmarkPhoneIdle: it connects,
// says so, pauses when told, and ends when its stdin closes.
func TestIdlePhoneChild(t *testing.T) {
	if os.Getenv("REDPANDA_IDLE_CHILD") == "" {
		t.Skip("run by BenchmarkPhoneIdle")
	}
	c, err := Open(&Options{Home: os.Getenv("REDPANDA_CHILD_HOME")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetListener(newRecorder())
	if _, err := c.AddNode(os.Getenv("REDPANDA_CHILD_NODE")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateChannel("c"); err != nil && ErrorCode(err) != CodeChannelExists {
		t.Fatal(err)
	}
	if err := c.Connect(0, nil); err != nil {
		t.Fatal(err)
	}
	fmt.Println("connected")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "pause" {
			if err := c.Pause(); err != nil {
				t.Fatal(err)
			}
			fmt.Println("paused")
		}
	}
}

// switches sums the context switches of every thread of pid.
func switches(t testing.TB, pid int) int64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no tasks of %d: %v", pid, err)
	}
	var n int64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just ended
		}
		for _, l := range gostrings.Split(string(b), "\n") {
			k, v, ok := gostrings.Cut(l, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				x, _ := strconv.ParseInt(gostrings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// memKiB is a memory figure of pid's status: VmRSS (all it has in RAM)
// or RssAnon (heap and stacks, without the program's own pages, which
// the OS can drop and reload).
func memKiB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range gostrings.Split(string(b), "\n") {
		if v, ok := gostrings.CutPrefix(l, field+":"); ok {
			x, _ := strconv.ParseInt(gostrings.TrimSpace(gostrings.TrimSuffix(gostrings.TrimSpace(v), "kB")), 10, 64)
			return x
		}
	}
	t.Fatalf("no %s", field)
	return 0
}
