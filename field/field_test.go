package field

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redpanda-p2p/homenode/internal/fieldkit"
)

// bins are the real binaries, built once for the run by TestMain.
var bins *fieldkit.Binaries

// TestMain builds the binaries, runs the tests, and then checks that they
// left no goroutine behind (fieldkit's output scanners); it calls goleak
// itself, as fieldkit does, to know no package of the module's but the kit.
func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	if !testing.Short() {
		var err error
		if dir, err = os.MkdirTemp("", "field-bin"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if bins, err = fieldkit.Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if dir != "" {
			os.RemoveAll(dir)
		}
		os.Exit(code)
	}))
}

// runs is FIELD_RUNS: how many times each measured step is repeated
// (default 1: the scenario once, with its figures printed under -v).
func runs(t *testing.T) int {
	t.Helper()
	s := os.Getenv("FIELD_RUNS")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FIELD_RUNS=%q: want a count of at least 1", s)
	}
	return n
}

// down is FIELD_DOWN: how long a stopped node stays down before it is
// started again (default 0: at once, as systemd restarts a crashed
// service; a power cut and a boot take tens of seconds).
func down(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("FIELD_DOWN")
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		t.Fatalf("FIELD_DOWN=%q: want a duration such as 35s", s)
	}
	return d
}

func needBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the field suite builds and runs the real binaries")
	}
}

const noQR = "zbarimg is not installed (apt install zbar-tools, or make test-deps): paired from /status.json's pairing.uri instead of decoding the status page's QR code"

// pair pairs the owner's app with its node from the status page's QR and
// says, once per test, when zbarimg was missing.
func pair(t *testing.T, owner *fieldkit.App, n *fieldkit.Node) {
	t.Helper()
	if !owner.Pair(t, n) {
		t.Log(noQR)
	}
}

// friendRe matches the line a node logs once it reached a friend node
// and both proved a channel they share.
func friendRe(peer string) *regexp.Regexp {
	return regexp.MustCompile(`msg="friend node connected".* peer=` + regexp.QuoteMeta(peer) + `\b`)
}

// found waits until one of the two nodes logged the other as a friend
// node (after the marks) and returns when, and checks that each then
// lists the other among its connected peers.
func found(t *testing.T, a, b *fieldkit.Node, markA, markB int) time.Time {
	t.Helper()
	reA, reB := friendRe(b.PeerID), friendRe(a.PeerID)
	deadline := time.Now().Add(fieldkit.Patience)
	var at time.Time
	for at.IsZero() {
		for _, l := range a.LogSince(markA) {
			if reA.MatchString(l.Text) {
				at = l.At
			}
		}
		for _, l := range b.LogSince(markB) {
			if reB.MatchString(l.Text) && (at.IsZero() || l.At.Before(at)) {
				at = l.At
			}
		}
		if at.IsZero() {
			if time.Now().After(deadline) {
				t.Fatalf("%s and %s never met as friend nodes within %v\n%s:\n%s\n%s:\n%s", a.Name, b.Name, fieldkit.Patience,
					a.Name, a.Tail(30), b.Name, b.Tail(30))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, n := range [][2]*fieldkit.Node{{a, b}, {b, a}} {
		if ps := n[0].Peers(t); !slices.Contains(ps, n[1].PeerID) {
			t.Fatalf("%s met %s but does not list it among its peers: %v", n[0].Name, n[1].Name, ps)
		}
	}
	return at
}

// heardAt parses a heard message's timestamp.
func heardAt(t *testing.T, h fieldkit.Heard) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, h.Timestamp)
	if err != nil {
		t.Fatalf("message timestamp %q: %v", h.Timestamp, err)
	}
	return at
}

// TestFamilyAndFriends is the network of one family and its friends,
// built step by step on two home nodes: Alice's node A and Bob's node B.
// Alice and Bob pair their nodes from the status page's QR code; a second
// node on A's port refuses to start; Carol, who has no node, gets a hop
// ticket from Alice and hears her; Bob joins Alice's channel with nothing
// but its key string and the two homes hear each other through their
// nodes; node B is stopped with SIGTERM and node A killed with SIGKILL
// while Bob's and Carol's apps run, and they keep hearing everything
// that was acknowledged; Alice links a tablet, which gets her channels and
// hears them.
func TestFamilyAndFriends(t *testing.T) {
	needBinaries(t)
	t.Parallel()
	nodeA := bins.StartNode(t, fieldkit.NodeConfig{Name: "node A (alice's)"})
	nodeB := bins.StartNode(t, fieldkit.NodeConfig{Name: "node B (bob's)"})
	alice, bob, carol := bins.NewApp(t, "alice"), bins.NewApp(t, "bob"), bins.NewApp(t, "carol")
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("owners pair from the status page QR", func(t *testing.T) {
		qrA, qrB := alice.Pair(t, nodeA), bob.Pair(t, nodeB)
		for _, c := range []struct {
			n  *fieldkit.Node
			id string
		}{{nodeA, alice.ID}, {nodeB, bob.ID}} {
			if us := c.n.Users(t); len(us) != 1 || us[0].Identity != c.id || us[0].Hop != 0 {
				t.Fatalf("%s's users after pairing: %+v; want its owner %s at hop 0", c.n.Name, us, c.id)
			}
		}
		if !qrA || !qrB {
			t.Skip(noQR)
		}
	})

	step("a second node on a busy port refuses to start", func(t *testing.T) {
		for _, c := range []struct {
			what string
			args []string
			port int
		}{
			{"libp2p port", []string{"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", nodeA.Port), "--http", "127.0.0.1:0"}, nodeA.Port},
			{"status page port", []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--http", fmt.Sprintf("127.0.0.1:%d", nodeA.HTTPPort)}, nodeA.HTTPPort},
		} {
			dir := t.TempDir()
			cmd := exec.Command(bins.Homenode, append([]string{"run", "--config", os.DevNull, "--data-dir", dir,
				"--admin-socket", dir + "/admin.sock", "--set", "upnp=false"}, c.args...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("a second node on %s's %s (%d): %v, want a non-zero exit\n%s", nodeA.Name, c.what, c.port, err, out)
			}
			if want := fmt.Sprintf("port %d/tcp is in use", c.port); !strings.Contains(string(out), want) {
				t.Errorf("a second node on %s's %s exited (%v) without saying %q:\n%s", nodeA.Name, c.what, err, want, out)
			}
			if strings.Contains(string(out), "msg=ready") {
				t.Errorf("the second node said ready:\n%s", out)
			}
		}
		if !nodeA.Running() || nodeA.Status(t).Node.PeerID != nodeA.PeerID {
			t.Fatalf("%s after the second node's attempts:\n%s", nodeA.Name, nodeA.Tail(20))
		}
	})

	var key string
	step("a friend without a node gets a ticket and hears the owner", func(t *testing.T) {
		key = strings.TrimSpace(alice.Run(t, "channel", "new", "family"))
		chain := strings.TrimSpace(alice.Run(t, "ticket", "issue", carol.ID))
		if out := carol.Run(t, "ticket", "set", chain); !strings.Contains(out, "hop 1") {
			t.Fatalf("carol$ redpanda ticket set printed %q", out)
		}
		carol.Run(t, "channel", "join", "family", key)
		app := carol.Listen(t)
		s := alice.Send(t, "family", "hello carol")
		if h := app.Wait(t, s.Text); h.Author != alice.ID || h.Mine || h.ID != s.ID {
			t.Fatalf("carol heard %+v", h)
		}
		users := nodeA.Users(t)
		if !slices.ContainsFunc(users, func(u fieldkit.User) bool { return u.Identity == carol.ID && u.Hop == 1 && u.Sponsor == alice.ID }) {
			t.Fatalf("%s's users: %+v; want carol at hop 1, sponsored by alice", nodeA.Name, users)
		}
	})

	step("two friends with nodes share a channel by key string", func(t *testing.T) {
		markA, markB := nodeA.Mark(), nodeB.Mark()
		join := bob.Try("channel", "join", "family", key)
		if join.Err != nil {
			t.Fatalf("bob$ redpanda channel join family KEY: %v\n%s", join.Err, join.Stderr)
		}
		met := found(t, nodeA, nodeB, markA, markB)
		t.Logf("figure: nodes A and B met %v after bob's channel join started", met.Sub(join.Start).Round(time.Millisecond))

		bobApp := bob.Listen(t)
		s := alice.Send(t, "family", "hello bob, from alice's home")
		h := bobApp.Wait(t, s.Text)
		if h.Author != alice.ID || h.ID != s.ID {
			t.Fatalf("bob heard %+v", h)
		}
		nodeB.Holds(t, h.ChannelID, heardAt(t, h))
		bobApp.Stop(t)

		aliceApp := alice.Listen(t)
		s = bob.Send(t, "family", "hello alice, from bob's home")
		h = aliceApp.Wait(t, s.Text)
		if h.Author != bob.ID || h.ID != s.ID {
			t.Fatalf("alice heard %+v", h)
		}
		nodeA.Holds(t, h.ChannelID, heardAt(t, h))
		aliceApp.Stop(t)
	})

	step("nodes restart while the friends' apps run", func(t *testing.T) {
		// Carol's only node is A; Bob's is B, and A serves him too (he is
		// not registered there, but A serves the channel to a member).
		apps := []struct {
			name string
			own  *fieldkit.Node
			l    *fieldkit.Listener
		}{{"bob's app", nodeB, bob.Listen(t)}, {"carol's app", nodeA, carol.Listen(t)}}
		usersBefore := map[*fieldkit.Node][]fieldkit.User{nodeA: nodeA.Users(t), nodeB: nodeB.Users(t)}
		type restart struct {
			n   *fieldkit.Node
			sig syscall.Signal
			// idle: the apps heard everything and their connections went
			// quiet before the stop, as a phone's are most of the time.
			// A killed node's QUIC connection then carries nothing that
			// the restarted node could answer with a reset: only the
			// app's probe notices it.
			idle bool
		}
		// The scenario: B is stopped, A is killed right after a post and
		// again while idle. Measuring (FIELD_RUNS > 1), each round also
		// kills B while idle and stops A.
		order := []restart{{nodeB, syscall.SIGTERM, false}, {nodeA, syscall.SIGKILL, false}, {nodeA, syscall.SIGKILL, true}}
		if runs(t) > 1 {
			order = append(order, restart{nodeB, syscall.SIGKILL, true}, restart{nodeA, syscall.SIGTERM, false})
		}
		quiet := func() {
			// Longer than QUIC's acknowledgement delays and
			// retransmissions on loopback: nothing is in flight after it.
			time.Sleep(2 * time.Second)
		}
		var sent []fieldkit.Sent
		figures := map[string]fieldkit.Durations{}
		var figureKeys []string
		for round := range runs(t) {
			for _, o := range order {
				n, sig := o.n, o.sig
				what := "" // each message's text is unique: the apps are waited on by text
				if o.idle {
					what = " while idle"
				}
				var before fieldkit.Sent
				if n == nodeA {
					// Acknowledged by A, then A is stopped at once: what A
					// acknowledged must outlive the stop.
					before = alice.Send(t, "family", fmt.Sprintf("just before %s's %s%s, round %d", n.Name, sigName(sig), what, round))
					if o.idle {
						for _, app := range apps {
							app.l.Wait(t, before.Text)
						}
						quiet()
					}
					n.Stop(t, sig)
				} else {
					// Posted while B is down, acknowledged by A: B gets it
					// from A when it is back.
					if o.idle {
						quiet()
					}
					n.Stop(t, sig)
					before = alice.Send(t, "family", fmt.Sprintf("while %s is down after %s%s, round %d", n.Name, sigName(sig), what, round))
				}
				if !slices.Contains(before.AckedBy, nodeA.PeerID) {
					t.Fatalf("%q was acknowledged by %v, not by %s", before.Text, before.AckedBy, nodeA.Name)
				}
				time.Sleep(down(t))
				n.Start(t)
				// Posted the moment the node is ready, by a fresh process
				// as a person would; the apps, running all along, hear it.
				after := alice.Send(t, "family", fmt.Sprintf("after %s's %s%s, round %d", n.Name, sigName(sig), what, round))
				sent = append(sent, before, after)
				for _, app := range apps {
					h := app.l.Wait(t, after.Text)
					app.l.Wait(t, before.Text)
					whose := "a friend's"
					if app.own == n {
						whose = "its own"
					}
					k := fmt.Sprintf("%s of %s node (%s)", sigName(sig), whose, app.name)
					if o.idle {
						k = fmt.Sprintf("%s of %s idle node (%s)", sigName(sig), whose, app.name)
					}
					if _, ok := figures[k]; !ok {
						figureKeys = append(figureKeys, k)
					}
					figures[k] = append(figures[k], h.At.Sub(n.ReadyAt))
					t.Logf("figure: round %d, %s: heard a post sent at ready %v after ready (the send command took %v)",
						round, k, h.At.Sub(n.ReadyAt).Round(time.Millisecond), after.Took().Round(time.Millisecond))
				}
				if got := n.Users(t); !sameUsers(got, usersBefore[n]) {
					t.Fatalf("%s's users after %v: %+v; before: %+v", n.Name, sig, got, usersBefore[n])
				}
				for _, l := range n.LogSince(0) {
					if strings.Contains(l.Text, "registration dropped") {
						t.Fatalf("%s dropped a registration after %v: %s", n.Name, sig, l.Text)
					}
				}
			}
		}
		// Nothing acknowledged was lost, and nothing came twice.
		for _, app := range apps {
			got := map[string]int{}
			for _, h := range app.l.Messages(t) {
				got[h.ID]++
			}
			for _, s := range sent {
				if got[s.ID] != 1 {
					t.Errorf("%s printed %q %d times", app.name, s.Text, got[s.ID])
				}
			}
		}
		for _, k := range figureKeys {
			t.Logf("figure: a running app hears again after a %s restart (node ready -> post sent then heard): %v", k, figures[k])
		}
	})

	step("a linked device gets the owner's channels and hears", func(t *testing.T) {
		link := strings.TrimSpace(alice.Run(t, "device", "link"))
		tablet := bins.EmptyApp(t, "alice's tablet")
		tablet.Run(t, "device", "join", link, "--name", "tablet")
		if out := tablet.Run(t, "channel", "list"); !strings.Contains(out, "family") {
			t.Fatalf("the tablet's channels after device join:\n%s", out)
		}
		app := tablet.Listen(t)
		s := carol.Send(t, "family", "hello alice's tablet")
		if h := app.Wait(t, s.Text); h.Author != carol.ID {
			t.Fatalf("the tablet heard %+v", h)
		}
		// A channel the phone makes later reaches the running device.
		alice.Run(t, "channel", "new", "later")
		s = alice.Send(t, "later", "made on the phone after the link")
		if h := app.Wait(t, s.Text); h.Author != alice.ID || !h.Mine || h.Channel != "later" {
			t.Fatalf("the tablet heard %+v", h)
		}
	})
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return s.String()
}

func sameUsers(a, b []fieldkit.User) bool {
	key := func(us []fieldkit.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, fmt.Sprintf("%s/%d/%s", u.Identity, u.Hop, u.Sponsor))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

// TestFriendsWithNodesFindEachOther: two friends, each with a freshly
// paired home node, share a channel by its key string only, or by an
// invitation and its answer; nothing else tells either node about the
// other. The nodes find each other, and each home's running app hears
// what the other posts. It prints how long the nodes took to meet and a
// post to reach the other home's app (FIELD_RUNS times, median and
// worst).
func TestFriendsWithNodesFindEachOther(t *testing.T) {
	needBinaries(t)
	t.Parallel()
	for _, how := range []string{"key string", "invitation"} {
		t.Run(how, func(t *testing.T) {
			var meet, post fieldkit.Durations
			for run := range runs(t) {
				t.Run(fmt.Sprintf("run %d", run), func(t *testing.T) {
					m, p := freshFriends(t, how)
					meet, post = append(meet, m), append(post, p)
				})
			}
			t.Logf("figure: by %s, two fresh nodes meet (from the share until a node logs the other as its friend): %v", how, meet)
			t.Logf("figure: by %s, a post reaches the other home's running app (from send until listen prints it): %v", how, post)
		})
	}
}

// freshFriends runs one instance of the two-homes scenario and returns
// how long the nodes took to meet and Alice's post to reach Bob's app.
func freshFriends(t *testing.T, how string) (meet, post time.Duration) {
	t.Helper()
	nodeA := bins.StartNode(t, fieldkit.NodeConfig{Name: "node A (alice's)"})
	nodeB := bins.StartNode(t, fieldkit.NodeConfig{Name: "node B (bob's)"})
	alice, bob := bins.NewApp(t, "alice"), bins.NewApp(t, "bob")
	pair(t, alice, nodeA)
	pair(t, bob, nodeB)
	markA, markB := nodeA.Mark(), nodeB.Mark()
	var shared time.Time
	switch how {
	case "key string":
		key := strings.TrimSpace(alice.Run(t, "channel", "new", "family"))
		r := bob.Try("channel", "join", "family", key)
		if r.Err != nil {
			t.Fatalf("bob$ redpanda channel join family KEY: %v\n%s", r.Err, r.Stderr)
		}
		shared = r.Start
	case "invitation":
		invite := strings.TrimSpace(alice.Run(t, "invite"))
		r := bob.Try("accept", invite, "family")
		if r.Err != nil {
			t.Fatalf("bob$ redpanda accept INVITATION family: %v\n%s", r.Err, r.Stderr)
		}
		shared = r.Start
		alice.Run(t, "complete", strings.TrimSpace(r.Stdout), "family")
	}
	met := found(t, nodeA, nodeB, markA, markB)

	bobApp := bob.Listen(t)
	s := alice.Send(t, "family", "hello bob, from alice's home")
	h := bobApp.Wait(t, s.Text)
	if h.Author != alice.ID || h.ID != s.ID {
		t.Fatalf("bob heard %+v", h)
	}
	nodeB.Holds(t, h.ChannelID, heardAt(t, h))
	bobApp.Stop(t)

	aliceApp := alice.Listen(t)
	back := bob.Send(t, "family", "hello alice, from bob's home")
	hb := aliceApp.Wait(t, back.Text)
	if hb.Author != bob.ID || hb.ID != back.ID {
		t.Fatalf("alice heard %+v", hb)
	}
	nodeA.Holds(t, hb.ChannelID, heardAt(t, hb))
	aliceApp.Stop(t)
	return met.Sub(shared), h.At.Sub(s.Start)
}
