package fieldkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Patience bounds every wait for a condition (a liveness bound, not a
// figure: the suite measures figures and prints them).
const Patience = 60 * time.Second

// Line is one line a process printed, with the moment it arrived.
type Line struct {
	Text   string
	At     time.Time
	Stderr bool
}

// process is a long-running binary whose output lines are kept, in
// arrival order, stdout and stderr interleaved.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit error, set before done closes

	mu      sync.Mutex
	lines   []Line
	changed chan struct{} // closed and replaced at each new line
}

func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), changed: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.scan(stdout, false) }()
	go func() { defer wg.Done(); p.scan(stderr, true) }()
	go func() {
		wg.Wait()
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *process) scan(r io.Reader, isErr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, Line{Text: sc.Text(), At: time.Now(), Stderr: isErr})
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// mark is the number of lines so far: waitLine(re, mark) sees only what
// came after.
func (p *process) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// waitLine waits until a line from index from on matches re, and returns
// it and its index. It fails if the process exits first or after
// Patience.
func (p *process) waitLine(t testing.TB, re *regexp.Regexp, from int) (Line, int) {
	t.Helper()
	return p.waitFor(t, "/"+re.String()+"/", func(l Line) bool { return re.MatchString(l.Text) }, from)
}

// waitFor waits until a line from index from on satisfies match; what
// names it in failures.
func (p *process) waitFor(t testing.TB, what string, match func(Line) bool, from int) (Line, int) {
	t.Helper()
	l, i, err := p.find(what, match, from)
	if err != nil {
		t.Fatal(err)
	}
	return l, i
}

// errExited is find's error when the process ended first.
var errExited = errors.New("exited")

// find is waitFor that returns an error (wrapping errExited when the
// process ended first) instead of failing the test.
func (p *process) find(what string, match func(Line) bool, from int) (Line, int, error) {
	deadline := time.After(Patience)
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				l := p.lines[i]
				p.mu.Unlock()
				return l, i, nil
			}
		}
		from = max(from, len(p.lines))
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			// The last lines may have come with the exit.
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if n > from {
				continue
			}
			return Line{}, 0, fmt.Errorf("%s %w (%v) before printing %s; its output:\n%s", p.name, errExited, p.exitErr(), what, p.tail(60))
		case <-deadline:
			return Line{}, 0, fmt.Errorf("%s printed no %s within %v; its output:\n%s", p.name, what, Patience, p.tail(60))
		}
	}
}

// since returns the lines from index from on.
func (p *process) since(from int) []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines[min(from, len(p.lines)):]...)
}

func (p *process) tail(n int) string {
	ls := p.since(0)
	ls = ls[max(0, len(ls)-n):]
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// signal sends sig and waits for the exit; a process that ignores it
// for Patience is killed and the test fails.
func (p *process) signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	if p.exited() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(Patience):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s ignored %v for %v; its output:\n%s", p.name, sig, Patience, p.tail(60))
		return p.exitErr()
	}
}
