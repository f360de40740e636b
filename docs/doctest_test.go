// Package docs holds the user documentation. Its test runs every shell
// command of README.md and docs/*.md against the built binaries, so that
// the documentation cannot drift from the program.
//
// # Which lines are commands
//
// Every line of a fenced block tagged sh, shell, bash or console is a
// command (a trailing backslash continues it). In an indented block, or a
// fenced block without a language, a line is a command when its first
// word is a program this test knows (rules below), or when it starts with
// a prompt ("$ ", or "alice$ " for a person's own device); the other lines
// are the output the doc shows. A command that no rule covers fails the
// test: add a rule (what to run, or why it cannot run here).
//
// # How they run
//
// Each file is one scenario, its commands in order, in a fresh directory
// that stands in for the repository checkout (and for /tmp), with the
// built homenode, redpanda, rpbench and rpupdate first on PATH:
//
//   - `go run ./cmd/NAME` is the built NAME;
//   - `make run` is the Makefile's own recipe (`make -n run`), started in
//     the background on loopback ports (HOMENODE_HTTP, HOMENODE_LISTEN);
//     so are `homenode run` and `redpanda listen`, each kept until the
//     scenario ends and then stopped, and it must then exit cleanly;
//   - "alice$ redpanda ..." runs with alice's own client home;
//   - /tmp/ is the scenario's directory, and the doc's ports 8080 and 4001
//     are the node's loopback ports;
//   - `go test ... -bench X -benchtime N` runs in the repository with
//     -benchtime 1x: the command and the benchmark must exist, the figures
//     are the doc's own;
//   - what cannot run here (flashing a card, apt on a Pi, the test suite
//     itself, minute-long benchmarks, image builds) is listed in rules
//     with the reason; a skipped make target must still exist (`make -n`),
//     a skipped rpbench run must still parse its flags (`rpbench FLAGS -h`).
//
// # Placeholders
//
// A doc writes what a person types: 'RPPAIR1:…', KEY, THEIR-ID. An HTML
// comment, invisible on the rendered page, says where the value comes
// from, in words a reader of the source follows:
//
//	<!-- doctest: KEY is the output of "channel new family" -->
//	<!-- doctest: RPPAIR1:… is /RPPAIR1:\S+/ in the output of "make run" -->
//	<!-- doctest: the output of "listen" shows /hello/ -->
//
// A placeholder is replaced, wherever a later command uses it, by the
// output (stdout, trimmed; for a background command also its log so far)
// of the latest command before it whose text contains the quoted words,
// or by the first match of /REGEXP/ in it (its first group, if it has
// one). "shows" waits, at its place in the file, until the output of that
// command matches.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// rule says what to do with a command that matches re.
type rule struct {
	// file, when set, limits the rule to one doc (its base name).
	file string
	re   *regexp.Regexp
	do   action
	// why a skipped command cannot run in a test.
	why string
	// needs is a program outside this repository the command runs; the
	// scenario skips, saying so, where it is not installed
	// (scripts/install-test-deps.sh installs it).
	needs string
	// ready is what a background command prints (stdout or log) once it
	// is ready for the next command.
	ready *regexp.Regexp
}

type action int

const (
	run        action = iota // run in the scenario directory
	runInRepo                // run in the repository (make help)
	background               // start, wait for ready, stop at the end
	makeRun                  // the Makefile's recipe, in the background
	bench                    // go test -bench in the repository, one iteration
	skipMake                 // skip, but `make -n` must know the target
	checkFlags               // skip, but the program must take its flags (NAME FLAGS... -h)
	skip                     // skip, for the reason given
)

// rules are tried in order; the first match decides. Commands are
// matched after the prompt is taken off and `go run ./cmd/NAME` became
// NAME.
var rules = []rule{
	{file: "CONTACTS.md", re: regexp.MustCompile(`^redpanda (contacts (add|find)|friends (accept|agree))\b`), do: skip,
		why: "a transcript of four people's devices (channels between alice, bob, carol and frank, bob's and frank's clients running to answer, carol's accept waiting while alice agrees); cmd/redpanda/contacts_test.go and friends_test.go run these commands with real clients"},
	{file: "UPDATES.md", re: regexp.MustCompile(`^redpanda node update\b`), do: skip,
		why: "needs a paired node on the A/B SD-card image (off the image a node has no updater); make update-test runs the real client's `node update feed` and `apply --file` against one in QEMU; appliance/updateflow_test.go sends `update-apply` with a version and a URL over the owner protocol, appliance/updater_test.go the rest"},
	{re: regexp.MustCompile(`^homenode run\b`), do: background, ready: regexp.MustCompile(`(?m)^peer id: `)},
	{re: regexp.MustCompile(`^redpanda( --home \S+)? listen\b`), do: background, ready: regexp.MustCompile(`redpanda: connected to`)},
	{re: regexp.MustCompile(`^(homenode|redpanda)\b`), do: run},
	{re: regexp.MustCompile(`^curl\b`), do: run, needs: "curl"},
	{re: regexp.MustCompile(`^echo .*\| *(homenode|redpanda)\b`), do: run}, // input on stdin
	{re: regexp.MustCompile(`^make run\b`), do: makeRun, ready: regexp.MustCompile(`(?m)^peer id: `)},
	{re: regexp.MustCompile(`^make help\b`), do: runInRepo},
	{re: regexp.MustCompile(`^make test\b`), do: skipMake, why: "the test suite itself, which runs this test"},
	{re: regexp.MustCompile(`^make (build|build-arm64|build-armv7)\b`), do: skipMake, why: "builds what this test already built (go build)"},
	{re: regexp.MustCompile(`^make lint\b`), do: skipMake, why: "staticcheck over the whole tree: minutes of CPU; CI runs it"},
	{re: regexp.MustCompile(`^make proto\b`), do: skipMake, why: "needs protoc; node/wire's tests check the generated code"},
	{re: regexp.MustCompile(`^make bench\b`), do: skipMake, why: "a minute of benchmarks; figures are not checked here"},
	{re: regexp.MustCompile(`^make deb\b`), do: skipMake, why: "builds a .deb; packaging/deb_test.go builds and inspects one"},
	{re: regexp.MustCompile(`^make (image|image-test)\b`), do: skipMake, why: "builds or boots the SD-card image: ten minutes, root or subuids"},
	{re: regexp.MustCompile(`^make (aar|xcframework)\b`), do: skipMake, why: "gomobile bind: needs the Android SDK and NDK, or macOS with Xcode"},
	{re: regexp.MustCompile(`^make mobile-test\b`), do: skipMake, why: "a test suite of its own (the JVM test), minutes"},
	{re: regexp.MustCompile(`^make (mobile|mobile-jni|mobile-size)\b`), do: skipMake, why: "gobind and a cgo build of the binding: minutes; mobile/redpanda's TestBindingsComplete and TestJavaPhones run the same steps"},
	{file: "MOBILE.md", re: regexp.MustCompile(`^(REDPANDA_IDLE_WINDOW=\S+ )?go test\b.*-bench PhoneIdle\b`), do: skip, why: "watches an idle client for a minute in each state (two minutes at least)"},
	{file: "MOBILE.md", re: regexp.MustCompile(`^REDPANDA_JVM_TEST=1 go test\b.*-run TestJavaPhones\b`), do: skip, why: "the JVM test, which make mobile-test runs (minutes)"},
	{re: regexp.MustCompile(`^make (bundle|update-test)\b`), do: skipMake, why: "builds a root slot image (minutes, root) and, for update-test, boots it in QEMU for an hour"},
	{re: regexp.MustCompile(`^make (repo|repo-test)\b`), do: skipMake, why: "needs the .debs of make deb and GnuPG; repo-test installs them in a Debian chroot (minutes, root)"},
	{re: regexp.MustCompile(`^rpupdate (feed|bundle)\b`), do: skip, why: "signs bundles of a root slot image, which make bundle builds; make update-test makes and checks bundles and feeds this way"},
	{re: regexp.MustCompile(`^rpupdate\b`), do: run},
	{re: regexp.MustCompile(`^go test\b.*-bench\b`), do: bench},
	{re: regexp.MustCompile(`^rpbench\b`), do: checkFlags, why: "a benchmark run of minutes; `make bench` runs it short"},
	{re: regexp.MustCompile(`^rpsim\b`), do: checkFlags, why: "a network simulation of minutes to hours; `go test ./sim` runs the small one"},
	{re: regexp.MustCompile(`^go test\b.*\./sim\b`), do: skip, why: "the simulation's own test, which make test runs"},
	{re: regexp.MustCompile(`^make sim\b`), do: skipMake, why: "hours of simulation on two cores (docs/SCALE.md)"},
	{re: regexp.MustCompile(`^xzcat .*\| *sudo dd\b`), do: skip, why: "writes an SD card"},
	{re: regexp.MustCompile(`^sudo apt (install|remove|purge)\b`), do: skip, why: "installs the .deb on a Pi; packaging/deb_test.go checks the package"},
	{re: regexp.MustCompile(`^sudo homenode\b`), do: skip, why: "runs on an installed Pi as root, against the systemd service; image/test.sh does so in QEMU"},
}

// programs are the first words that make a line of an indented block a
// command (see the package comment).
var programs = map[string]bool{"echo": true, "go": true, "make": true, "redpanda": true, "homenode": true, "rpbench": true,
	"rpupdate": true, "sudo": true, "xzcat": true, "curl": true, "systemctl": true, "journalctl": true, "apt": true}

// step is a command or an annotation, in file order.
type step struct {
	file string
	line int
	// command: the text as the doc has it, without prompt; actor is the
	// prompt's name ("alice" for "alice$ "), "" for none.
	cmd, actor string
	// annotation statement, when cmd is empty.
	note string
}

var (
	fenceRe   = regexp.MustCompile("^\\s*```+\\s*([A-Za-z0-9_-]*)")
	promptRe  = regexp.MustCompile(`^(?:([A-Za-z][A-Za-z0-9_-]*)?\$)\s+(.*)$`)
	noteOpen  = regexp.MustCompile(`<!--\s*doctest:`)
	defineRe  = regexp.MustCompile(`^(.+?) is (?:/(.+)/ in )?the output of "(.+)"$`)
	expectRe  = regexp.MustCompile(`^the output of "(.+)" shows /(.+)/$`)
	goRunRe   = regexp.MustCompile(`\bgo run \./cmd/([a-z]+)`)
	benchtime = regexp.MustCompile(`-benchtime[ =]\S+`)
	badFlag   = regexp.MustCompile(`flag provided but not defined|invalid value|invalid boolean`)
)

// parse reads the commands and annotations of one markdown file.
func parse(file string, src []byte) ([]step, error) {
	var steps []step
	lines := strings.Split(string(src), "\n")
	inFence, fenceCmds := false, false
	prevBlank := true
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		n := i + 1
		if m := fenceRe.FindStringSubmatch(l); m != nil {
			if !inFence {
				inFence = true
				switch m[1] {
				case "sh", "shell", "bash", "console":
					fenceCmds = true
				case "":
					fenceCmds = false // judged line by line, as an indented block
				default:
					fenceCmds = false
					// Any other language is not shell: skip to the end.
					for i++; i < len(lines) && fenceRe.FindStringSubmatch(lines[i]) == nil; i++ {
					}
					inFence = false
				}
			} else {
				inFence = false
			}
			prevBlank = false
			continue
		}
		if !inFence && noteOpen.MatchString(l) {
			text := l
			for !strings.Contains(text, "-->") && i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
			}
			body := noteOpen.Split(text, 2)[1]
			body, _, _ = strings.Cut(body, "-->")
			for _, st := range strings.Split(body, "\n") {
				if st = strings.TrimSpace(st); st != "" {
					steps = append(steps, step{file: file, line: n, note: st})
				}
			}
			continue
		}
		var text string
		var judged bool // judged by its first word (not a shell-tagged fence)
		switch {
		case inFence && fenceCmds:
			text = strings.TrimSpace(l)
		case inFence:
			text, judged = strings.TrimSpace(l), true
		case strings.HasPrefix(l, "    ") && (prevBlank || isIndentedCode(lines, i)):
			text, judged = strings.TrimSpace(l), true
		default:
			prevBlank = strings.TrimSpace(l) == ""
			continue
		}
		prevBlank = false
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + strings.TrimSpace(lines[i])
		}
		actor, cmd := "", text
		if m := promptRe.FindStringSubmatch(text); m != nil {
			actor, cmd = m[1], m[2]
		} else if judged && !programs[strings.Fields(text)[0]] {
			continue // output the doc shows, or a format
		}
		steps = append(steps, step{file: file, line: n, cmd: cmd, actor: actor})
	}
	if inFence {
		return nil, fmt.Errorf("%s: a fenced block is not closed", file)
	}
	return steps, nil
}

// isIndentedCode reports whether line i continues an indented block (the
// line before it is indented too).
func isIndentedCode(lines []string, i int) bool {
	return i > 0 && strings.HasPrefix(lines[i-1], "    ")
}

// ruleFor finds the rule for a command of file, with `go run ./cmd/NAME`
// as NAME.
func ruleFor(file, cmd string) (rule, bool) {
	c := goRunRe.ReplaceAllString(cmd, "$1")
	for _, r := range rules {
		if r.file != "" && r.file != filepath.Base(file) {
			continue
		}
		if r.re.MatchString(c) {
			return r, true
		}
	}
	return rule{}, false
}

func TestEveryDocCommandIsKnown(t *testing.T) {
	for _, f := range docFiles(t) {
		steps := mustParse(t, f)
		for _, s := range steps {
			if s.cmd == "" {
				if !defineRe.MatchString(s.note) && !expectRe.MatchString(s.note) {
					t.Errorf("%s:%d: doctest annotation %q is neither `NAME is [/RE/ in] the output of \"CMD\"` nor `the output of \"CMD\" shows /RE/`", s.file, s.line, s.note)
				}
				continue
			}
			if _, ok := ruleFor(s.file, s.cmd); !ok {
				t.Errorf("%s:%d: %q: no rule says how to run it or why it cannot run; add one to docs/doctest_test.go", s.file, s.line, s.cmd)
			}
		}
	}
}

// TestDocCommands runs every scenario.
func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs the docs' scenarios")
	}
	repo := repoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/homenode", "./cmd/redpanda", "./cmd/rpbench", "./cmd/rpupdate", "./cmd/rpsim")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	goEnv := goEnvironment(t)
	for _, f := range docFiles(t) {
		steps := mustParse(t, f)
		if len(steps) == 0 {
			continue
		}
		rel, _ := filepath.Rel(repo, f)
		t.Run(rel, func(t *testing.T) {
			sc := newScenario(t, repo, bin, goEnv)
			sc.run(steps)
		})
	}
}

// scenario is one file's commands, run in order in one directory.
type scenario struct {
	t        *testing.T
	repo     string
	dir      string
	env      []string
	httpPort int
	p2pPort  int
	ran      []*ran
	defs     map[string]definition
}

// ran is a command that ran (or runs, in the background).
type ran struct {
	doc  string // the command as the doc has it
	proc *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // stdout, and for a background command its stderr too
	done chan struct{}
	err  error
}

func (r *ran) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func (r *ran) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

type definition struct {
	name, cmd string
	re        *regexp.Regexp
}

func newScenario(t *testing.T, repo, bin string, goEnv []string) *scenario {
	sc := &scenario{t: t, repo: repo, dir: t.TempDir(), defs: map[string]definition{}}
	sc.httpPort, sc.p2pPort = testkit.FreePort(t), testkit.FreePort(t)
	home := filepath.Join(sc.dir, "home")
	if err := os.MkdirAll(filepath.Join(sc.dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc.env = append(goEnv,
		"PATH="+bin+":"+os.Getenv("PATH"),
		"HOME="+home,
		"LANG=C.UTF-8",
		"HOMENODE_HTTP=127.0.0.1:"+strconv.Itoa(sc.httpPort),
		fmt.Sprintf("HOMENODE_LISTEN=/ip4/127.0.0.1/tcp/%d,/ip4/127.0.0.1/udp/%d/quic-v1", sc.p2pPort, sc.p2pPort),
	)
	return sc
}

func (sc *scenario) run(steps []step) {
	t := sc.t
	defer sc.stopAll()
	for _, s := range steps {
		where := fmt.Sprintf("%s:%d", filepath.Base(s.file), s.line)
		if s.cmd == "" {
			sc.note(where, s.note)
			continue
		}
		r, ok := ruleFor(s.file, s.cmd)
		if !ok {
			t.Fatalf("%s: %q: no rule (TestEveryDocCommandIsKnown says more)", where, s.cmd)
		}
		switch r.do {
		case skip:
			t.Logf("%s: skipped %q: %s", where, s.cmd, r.why)
			continue
		case skipMake:
			// bash, so that the doc's trailing "# comment" stays a comment.
			cmd := dryMake(sc.repo, strings.TrimPrefix(s.cmd, "make "))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %q names no make target the Makefile has: %v\n%s", where, s.cmd, err, out)
			}
			t.Logf("%s: skipped %q (the target exists): %s", where, s.cmd, r.why)
			continue
		}
		if r.needs != "" {
			if _, err := exec.LookPath(r.needs); err != nil {
				t.Skipf("%s: %q needs %s, which is not installed (make test-deps)", where, s.cmd, r.needs)
			}
		}
		text := sc.expand(where, s.cmd)
		if r.do == checkFlags {
			cmd, ran := sc.command(s, text+" -h", sc.dir)
			out, _ := cmd.CombinedOutput()
			close(ran.done)
			if badFlag.Match(out) || !bytes.Contains(out, []byte("Usage")) {
				t.Fatalf("%s: %q: the program does not take these flags:\n%s", where, s.cmd, out)
			}
			t.Logf("%s: skipped %q (its flags parse): %s", where, s.cmd, r.why)
			continue
		}
		switch r.do {
		case run:
			sc.foreground(where, s, text, sc.dir)
		case runInRepo:
			sc.foreground(where, s, text, sc.repo)
		case bench:
			text = benchtime.ReplaceAllString(text, "")
			sc.foreground(where, s, text+" -benchtime 1x", sc.repo)
		case background:
			sc.background(where, s, text, r.ready)
		case makeRun:
			recipe, err := dryMake(sc.repo, "run").Output()
			if err != nil {
				t.Fatalf("%s: make -n run: %v", where, err)
			}
			sc.background(where, s, sc.expand(where, strings.TrimSpace(string(recipe))), r.ready)
		}
	}
}

// expand fills placeholders and maps the doc's world onto the scenario's.
// A trailing comment is for the reader and goes first: it may name a
// placeholder the command itself prints.
func (sc *scenario) expand(where, cmd string) string {
	cmd = stripComment(cmd)
	names := make([]string, 0, len(sc.defs))
	for n := range sc.defs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, n := range names {
		if strings.Contains(cmd, n) {
			cmd = strings.ReplaceAll(cmd, n, sc.value(where, sc.defs[n]))
		}
	}
	cmd = goRunRe.ReplaceAllString(cmd, "$1")
	cmd = strings.ReplaceAll(cmd, "/tmp/", sc.dir+"/tmp/")
	cmd = strings.ReplaceAll(cmd, ":8080", ":"+strconv.Itoa(sc.httpPort))
	cmd = strings.ReplaceAll(cmd, "/4001", "/"+strconv.Itoa(sc.p2pPort))
	return cmd
}

// value resolves a placeholder from the output of the latest command
// that matches it.
func (sc *scenario) value(where string, d definition) string {
	r := sc.latest(where, d.cmd)
	if d.re == nil {
		return strings.TrimSpace(r.output())
	}
	m := sc.waitMatch(where, r, d.re)
	if len(m) > 1 {
		return m[1]
	}
	return m[0]
}

func (sc *scenario) latest(where, cmd string) *ran {
	for i := len(sc.ran) - 1; i >= 0; i-- {
		if strings.Contains(sc.ran[i].doc, cmd) {
			return sc.ran[i]
		}
	}
	sc.t.Fatalf("%s: no command containing %q ran before this", where, cmd)
	return nil
}

// waitMatch waits (a liveness bound) until r's output matches re.
func (sc *scenario) waitMatch(where string, r *ran, re *regexp.Regexp) []string {
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := re.FindStringSubmatch(r.output()); m != nil {
			return m
		}
		select {
		case <-r.done:
			if m := re.FindStringSubmatch(r.output()); m != nil {
				return m
			}
			sc.t.Fatalf("%s: %q ended (%v) and its output never matched /%s/:\n%s", where, r.doc, r.err, re, r.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sc.t.Fatalf("%s: the output of %q did not match /%s/ within 90 s:\n%s", where, r.doc, re, r.output())
		}
	}
}

func (sc *scenario) note(where, st string) {
	if m := defineRe.FindStringSubmatch(st); m != nil {
		d := definition{name: m[1], cmd: m[3]}
		if m[2] != "" {
			d.re = regexp.MustCompile(m[2])
		}
		sc.defs[d.name] = d
		return
	}
	if m := expectRe.FindStringSubmatch(st); m != nil {
		sc.waitMatch(where, sc.latest(where, m[1]), regexp.MustCompile(m[2]))
		return
	}
	sc.t.Fatalf("%s: doctest annotation %q not understood", where, st)
}

func (sc *scenario) command(s step, text, dir string) (*exec.Cmd, *ran) {
	cmd := exec.Command("bash", "-o", "pipefail", "-c", text)
	cmd.Dir = dir
	cmd.Env = sc.env
	if s.actor != "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], "REDPANDA_HOME="+filepath.Join(sc.dir, "people", s.actor))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop the whole pipeline
	r := &ran{doc: s.cmd, proc: cmd, done: make(chan struct{})}
	sc.ran = append(sc.ran, r)
	return cmd, r
}

func (sc *scenario) foreground(where string, s step, text, dir string) {
	cmd, r := sc.command(s, text, dir)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = r, &stderr
	if err := cmd.Start(); err != nil {
		sc.t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	select {
	case <-r.done:
	case <-time.After(3 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
		sc.t.Fatalf("%s: %q did not finish within 3 minutes\nstdout:\n%s\nstderr:\n%s", where, s.cmd, r.output(), stderr.String())
	}
	if r.err != nil {
		sc.t.Fatalf("%s: the doc's command failed: %s\n  ran: %s\n  %v\nstdout:\n%s\nstderr:\n%s", where, s.cmd, text, r.err, r.output(), stderr.String())
	}
	sc.t.Logf("%s: ok: %s", where, s.cmd)
}

func (sc *scenario) background(where string, s step, text string, ready *regexp.Regexp) {
	cmd, r := sc.command(s, "exec "+text, sc.dir)
	cmd.Stdout, cmd.Stderr = r, r
	if err := cmd.Start(); err != nil {
		sc.t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	if ready != nil {
		sc.waitMatch(where, r, ready)
	}
	sc.t.Logf("%s: running in the background: %s", where, s.cmd)
}

// stopAll stops the background commands (SIGTERM, as systemd and Ctrl-C
// do) in reverse order; each must exit cleanly.
func (sc *scenario) stopAll() {
	for i := len(sc.ran) - 1; i >= 0; i-- {
		r := sc.ran[i]
		select {
		case <-r.done:
			continue
		default:
		}
		syscall.Kill(-r.proc.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.done:
			if r.err != nil && !sc.t.Failed() {
				sc.t.Errorf("%q exited with %v when stopped:\n%s", r.doc, r.err, tail(r.output(), 3000))
			}
		case <-time.After(30 * time.Second):
			syscall.Kill(-r.proc.Process.Pid, syscall.SIGKILL)
			<-r.done
			sc.t.Errorf("%q did not stop within 30 s of SIGTERM", r.doc)
		}
	}
}

// dryMake is `make -n ARGS` in the repository, printing only the recipe
// even when this test runs under make (`make test`), whose MAKEFLAGS
// would add "make[1]: Entering directory" lines.
func dryMake(repo, args string) *exec.Cmd {
	cmd := exec.Command("bash", "-c", "make -s --no-print-directory -n "+args)
	cmd.Dir = repo
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") && !strings.HasPrefix(kv, "MFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// stripComment drops a shell comment (" #" outside quotes) from cmd.
func stripComment(cmd string) string {
	var quote rune
	prev := ' '
	for i, c := range cmd {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (prev == ' ' || prev == '\t'):
			return strings.TrimSpace(cmd[:i])
		}
		prev = c
	}
	return strings.TrimSpace(cmd)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// docFiles are README.md and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

func mustParse(t *testing.T, file string) []step {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// goEnvironment passes the Go build cache and module settings through,
// so `go test` in a scenario (whose HOME is its own) reuses the cache.
func goEnvironment(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "GOROOT"} {
		if !sc.Scan() {
			break
		}
		env = append(env, k+"="+sc.Text())
	}
	return env
}
