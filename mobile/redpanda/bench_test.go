package redpanda

import (
	"bufio"
	"fmt"
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
// pauses, B posts, A resumes (b.N times; ms/op).
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
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		if err := a.Pause(); err != nil {
			b.Fatal(err)
		}
		if r, err := bb.Send("chat", fmt.Sprintf("missed %d", i), 0, nil); err != nil || !r.Delivered {
			b.Fatalf("send: %v", err)
		}
		before := ra.count("chat", false)
		b.StartTimer()
		start := time.Now()
		if err := a.Resume(0, nil); err != nil {
			b.Fatal(err)
		}
		ra.waitFor(b, "the missed message", func(ms []*Message, _ []*Event) bool { return count(ms, "chat", false) > before })
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/resume")
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
		watch := func(state string) {
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
		}
		expect("connected")
		watch("connected")
		fmt.Fprintln(stdin, "pause")
		expect("paused")
		watch("paused")
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("child: %v", err)
		}
	}
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
