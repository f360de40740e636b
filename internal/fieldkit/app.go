package fieldkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// App is one person's device: a redpanda client home, driven one command
// (one process) at a time, as a person types them. A Listener holds the
// home while it runs (the client allows one process per home).
type App struct {
	b    *Binaries
	Name string
	Home string
	ID   string // the identity, what `redpanda id` prints
}

// NewApp makes a fresh client home under t.TempDir() and its identity
// (`redpanda init`).
func (b *Binaries) NewApp(t testing.TB, name string) *App {
	t.Helper()
	a := &App{b: b, Name: name, Home: filepath.Join(t.TempDir(), name)}
	a.Run(t, "init")
	a.ID = strings.TrimSpace(a.Run(t, "id"))
	return a
}

// EmptyApp is a client home that has no identity yet (a new device that
// `device join` makes).
func (b *Binaries) EmptyApp(t testing.TB, name string) *App {
	t.Helper()
	return &App{b: b, Name: name, Home: filepath.Join(t.TempDir(), name)}
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Err            error
	Start, End     time.Time
}

// Took is how long the command ran.
func (r Result) Took() time.Duration { return r.End.Sub(r.Start) }

// Try runs `redpanda ARGS --home HOME` and returns what happened; a
// command still running after Patience is killed.
func (a *App) Try(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.b.Redpanda, append(args, "--home", a.Home)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	r := Result{Start: time.Now()}
	r.Err = cmd.Run()
	r.End = time.Now()
	r.Stdout, r.Stderr = o.String(), e.String()
	return r
}

// Run is Try that fails the test when the command fails, and returns its
// stdout.
func (a *App) Run(t testing.TB, args ...string) string {
	t.Helper()
	r := a.Try(args...)
	if r.Err != nil {
		t.Fatalf("%s$ redpanda %s: %v\nstdout: %s\nstderr: %s", a.Name, strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Sent is a message a node acknowledged as durable.
type Sent struct {
	Text    string
	ID      string
	AckedBy []string
	Result
}

// Send posts text to a channel (`redpanda send --json`) and returns what
// it printed: the message ID and the nodes that acknowledged it.
func (a *App) Send(t testing.TB, channel, text string) Sent {
	t.Helper()
	r := a.Try("send", channel, text, "--json")
	if r.Err != nil {
		t.Fatalf("%s$ redpanda send %s %q: %v\nstdout: %s\nstderr: %s", a.Name, channel, text, r.Err, r.Stdout, r.Stderr)
	}
	var res struct {
		ID      string
		AckedBy []string
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || res.ID == "" {
		t.Fatalf("%s$ redpanda send --json printed %q: %v", a.Name, r.Stdout, err)
	}
	if len(res.AckedBy) == 0 {
		t.Fatalf("%s$ redpanda send %s %q: no node acknowledged it\nstderr: %s", a.Name, channel, text, r.Stderr)
	}
	return Sent{Text: text, ID: res.ID, AckedBy: res.AckedBy, Result: r}
}

// Message is a line of `redpanda listen --json`.
type Message struct {
	Channel   string `json:"channel"`
	ChannelID string `json:"channel_id"`
	Author    string `json:"author"`
	Mine      bool   `json:"mine"`
	Text      string `json:"text"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
}

// Heard is a message a listener printed, and when it arrived.
type Heard struct {
	Message
	At time.Time
}

// Listener is a running `redpanda listen --json`: the person's app,
// open.
type Listener struct {
	a    *App
	proc *process
	// ConnectedAt is when it said it was connected (zero if it has not).
	ConnectedAt time.Time
}

var connectedRe = regexp.MustCompile(`^redpanda: connected to `)

// Listen starts `redpanda listen --json` (args: a channel name, if any)
// and waits until it says it is connected. The test's cleanup stops it
// with SIGINT, as Ctrl-C does, and expects a clean exit.
func (a *App) Listen(t testing.TB, args ...string) *Listener {
	t.Helper()
	p, err := startProcess(a.Name+"'s listen", a.b.Redpanda, append(append([]string{"listen", "--json"}, args...), "--home", a.Home)...)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{a: a, proc: p}
	t.Cleanup(func() { l.Stop(t) })
	c, _ := p.waitLine(t, connectedRe, 0)
	l.ConnectedAt = c.At
	return l
}

// Stop ends the app with SIGINT and checks that it exited cleanly.
func (l *Listener) Stop(t testing.TB) {
	t.Helper()
	if l.proc.exited() {
		return
	}
	if err := l.proc.signal(t, syscall.SIGINT); err != nil {
		t.Errorf("%s: %v; its output:\n%s", l.proc.name, err, l.proc.tail(40))
	}
}

// Messages returns every message the listener printed so far.
func (l *Listener) Messages(t testing.TB) []Heard {
	t.Helper()
	var out []Heard
	for _, line := range l.proc.since(0) {
		if line.Stderr {
			continue
		}
		var m Message
		if err := json.Unmarshal([]byte(line.Text), &m); err != nil {
			t.Fatalf("%s printed %q: %v", l.proc.name, line.Text, err)
		}
		out = append(out, Heard{Message: m, At: line.At})
	}
	return out
}

// Wait waits until the listener has printed a message with this text
// (before or after the call) and returns it.
func (l *Listener) Wait(t testing.TB, text string) Heard {
	t.Helper()
	var h Heard
	l.proc.waitFor(t, "message "+strconv.Quote(text), func(line Line) bool {
		var m Message
		if line.Stderr || json.Unmarshal([]byte(line.Text), &m) != nil || m.Text != text {
			return false
		}
		h = Heard{Message: m, At: line.At}
		return true
	}, 0)
	return h
}

// Tail is the last lines the listener printed (stdout and stderr).
func (l *Listener) Tail(lines int) string { return l.proc.tail(lines) }

// Pair makes the app the node's owner as a phone does: the code from the
// status page's QR (PairingFromQR), then `redpanda pair`. It checks that
// the node then names the app's identity as its owner. fromQR is false
// where zbarimg is missing and the code came from /status.json.
func (a *App) Pair(t testing.TB, n *Node) (fromQR bool) {
	t.Helper()
	uri, err := n.PairingFromQR(t)
	if err != nil && !errors.Is(err, ErrNoZbarimg) {
		t.Fatal(err)
	}
	var res struct {
		Node  string `json:"node"`
		Owner string `json:"owner"`
		Hop   int    `json:"hop"`
	}
	out := a.Run(t, "pair", uri, "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%s$ redpanda pair --json printed %q: %v", a.Name, out, err)
	}
	if res.Node != n.PeerID || res.Owner != a.ID || res.Hop != 0 {
		t.Fatalf("%s$ redpanda pair: %+v; want node %s, owner %s at hop 0", a.Name, res, n.PeerID, a.ID)
	}
	if st := n.Status(t); st.Pairing.State != "owned" || st.Pairing.Owner != a.ID {
		t.Fatalf("%s after %s paired: %+v", n.Name, a.Name, st.Pairing)
	}
	return err == nil
}
