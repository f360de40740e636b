package redpanda

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	gostrings "strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/internal/nonetlink"
)

// twoPhones: phone A owns a node and made channel "chat"; phone B has
// A's ticket and the channel's key, and both are connected.
func twoPhones(t *testing.T) (a, b *Client, ra, rb *recorder) {
	t.Helper()
	a, b = open(t, "a"), open(t, "b")
	n := startNode(t, a.ID())
	ra, rb = newRecorder(), newRecorder()
	a.SetListener(ra)
	b.SetListener(rb)
	if _, err := a.AddNode(n.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(0, nil); err != nil {
		t.Fatal(err)
	}
	key, err := a.CreateChannel("chat")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := a.IssueTicket(b.ID(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// B learns A's node from the ticket's hint alone.
	if tk, err := b.SetTicket(chain); err != nil || tk.Hop != 1 || tk.Owner != a.ID() {
		t.Fatalf("SetTicket: %+v, %v", tk, err)
	}
	if _, err := b.JoinChannel("chat", key); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(0, nil); err != nil {
		t.Fatal(err)
	}
	return a, b, ra, rb
}

// TestTwoPhones: messages both ways through the callback, a receipt, a
// pause while the other posts (nothing lost, nothing twice), history
// pages.
func TestTwoPhones(t *testing.T) {
	a, b, ra, rb := twoPhones(t)
	res, err := a.Send("chat", "hello B", 0, nil)
	if err != nil || !res.Delivered || res.AckedBy().Size() != 1 || res.ID == "" {
		t.Fatalf("send: %+v, %v", res, err)
	}
	rb.waitFor(t, "A's message at B", func(ms []*Message, _ []*Event) bool { return count(ms, "chat", false) == 1 })
	if got := rb.texts("chat"); !slices.Equal(got, []string{"hello B"}) {
		t.Fatalf("B got %q", got)
	}
	if _, err := b.Send("chat", "hello A", 0, nil); err != nil {
		t.Fatal(err)
	}
	ra.waitFor(t, "B's message and receipt at A", func(ms []*Message, es []*Event) bool {
		receipt := slices.ContainsFunc(es, func(e *Event) bool {
			return e.Kind == EventReceipt && e.MessageID == res.ID && e.Reader == b.ID()
		})
		return count(ms, "chat", false) == 1 && count(ms, "chat", true) == 1 && receipt
	})

	if err := a.Pause(); err != nil {
		t.Fatal(err)
	}
	if !a.IsPaused() || a.IsOnline() {
		t.Fatal("A not paused")
	}
	// Paused, A's home is closed: another process could open it.
	sdk, err := client.Open(client.Config{Home: a.opts.Home, Logger: quiet(), DialOnly: true})
	if err != nil {
		t.Fatalf("A's home is still held while paused: %v", err)
	}
	sdk.Close()
	const n = 6
	var sent []string
	for i := range n {
		r, err := b.Send("chat", fmt.Sprintf("while paused %d", i), 0, nil)
		if err != nil || !r.Delivered {
			t.Fatalf("B's send %d: %+v, %v", i, r, err)
		}
		sent = append(sent, r.ID)
	}
	// Calls work while paused (the home opens for the call).
	h, err := a.History("chat", 0)
	if err != nil || h.Size() < 2 {
		t.Fatalf("history while paused: %v, %v", h, err)
	}
	if !a.IsPaused() {
		t.Fatal("a call while paused resumed the client")
	}
	if err := a.Resume(0, nil); err != nil {
		t.Fatal(err)
	}
	ra.waitFor(t, "what B posted while A was paused", func(ms []*Message, _ []*Event) bool {
		return count(ms, "chat", false) >= 1+n
	})
	// Nothing twice: duplicates would come right behind the originals.
	time.Sleep(500 * time.Millisecond)
	if got := ra.texts("chat"); len(got) != 2+n {
		t.Fatalf("A's callbacks: %q, want 2 + %d", got, n)
	}
	ra.mu.Lock()
	seen := map[string]int{}
	for _, m := range ra.msgs {
		seen[m.ID]++
	}
	es := kinds(ra.events)
	ra.mu.Unlock()
	for _, id := range sent {
		if seen[id] != 1 {
			t.Errorf("message %s called back %d times", id, seen[id])
		}
	}
	for _, k := range []string{EventPaused, EventResumed, EventNodeConnected} {
		if !slices.Contains(es, k) {
			t.Errorf("A's events %v lack %s", es, k)
		}
	}

	// The history holds each message once, in order; pages go back to
	// the start.
	all, err := a.History("chat", 0)
	if err != nil || all.Size() != 2+n {
		t.Fatalf("history: %d, %v", all.Size(), err)
	}
	for i := range n {
		if m := all.Get(2 + i); m.Text != fmt.Sprintf("while paused %d", i) || m.Author != b.ID() || m.Mine {
			t.Fatalf("history %d: %+v", 2+i, m)
		}
	}
	if first := all.Get(0); first.DeliveredTo().Size() != 1 || first.DeliveredTo().Get(0) != b.ID() {
		t.Errorf("history's receipts of A's message: %v", first.DeliveredTo().slice())
	}
	var paged []string
	for before := ""; ; {
		page, err := a.HistoryBefore("chat", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		if page.Size() == 0 {
			break
		}
		for i := page.Size() - 1; i >= 0; i-- {
			paged = append(paged, page.Get(i).ID)
		}
		before = page.Get(0).ID
	}
	if len(paged) != 2+n || paged[0] != all.Get(all.Size()-1).ID || paged[len(paged)-1] != all.Get(0).ID {
		t.Fatalf("paged %d messages", len(paged))
	}
}

// TestSendWhilePaused: a paused phone's Send (a reply from a
// notification) opens the home for the call and delivers; the phone
// stays paused.
func TestSendWhilePaused(t *testing.T) {
	a, _, _, rb := twoPhones(t)
	if err := a.Pause(); err != nil {
		t.Fatal(err)
	}
	r, err := a.Send("chat", "from the notification", 0, nil)
	if err != nil || !r.Delivered {
		t.Fatalf("send while paused: %+v, %v", r, err)
	}
	if !a.IsPaused() {
		t.Fatal("Send resumed the client")
	}
	rb.waitFor(t, "the reply", func(ms []*Message, _ []*Event) bool { return count(ms, "chat", false) == 1 })
	if err := a.Pause(); err != nil {
		t.Fatalf("pausing twice: %v", err)
	}
}

// TestLongCalls: a timeout, a Cancel (before and during the call), a
// Pause and a Close each end a long call with their own code.
func TestLongCalls(t *testing.T) {
	c := open(t, "c")
	// A node that is never there: Connect waits for it.
	other := open(t, "other")
	if _, err := c.AddNode("/ip4/127.0.0.1/tcp/9/p2p/" + other.PeerID()); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "connect, 300 ms timeout", c.Connect(300, nil), CodeTimeout)

	done := NewCancel()
	done.Cancel()
	wantCode(t, "connect with a cancelled Cancel", c.Connect(60_000, done), CodeCancelled)

	during := func(what string, end func(), code int) {
		t.Helper()
		errs := make(chan error, 1)
		cancel := NewCancel()
		go func() { errs <- c.Connect(120_000, cancel) }()
		time.Sleep(200 * time.Millisecond) // let the call start; it would otherwise wait 2 minutes
		if code == CodeCancelled {
			cancel.Cancel()
		} else {
			end()
		}
		select {
		case err := <-errs:
			wantCode(t, what, err, code)
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: the call did not end", what)
		}
	}
	during("connect, cancelled", nil, CodeCancelled)
	during("connect, paused", func() {
		if err := c.Pause(); err != nil {
			t.Error(err)
		}
	}, CodePaused)
	if err := c.Resume(1, nil); ErrorCode(err) != CodeTimeout {
		t.Fatalf("resume with a 1 ms timeout: %v", err)
	}
	if c.IsPaused() {
		t.Fatal("a Resume that timed out left the client paused")
	}
	during("connect, closed", func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}, CodeClosed)
	wantCode(t, "channels after close", func() error { _, err := c.Channels(); return err }(), CodeClosed)
	wantCode(t, "pause after close", c.Pause(), CodeClosed)
	wantCode(t, "resume after close", c.Resume(0, nil), CodeClosed)
	if err := c.Close(); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
}

// TestConcurrency: calls from many threads while another pauses and
// resumes: no race, no deadlock, and a call fails only with CodePaused.
func TestConcurrency(t *testing.T) {
	c := open(t, "c")
	if _, err := c.CreateChannel("x"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 3 {
				case 0:
					_, err = c.History("x", 10)
				case 1:
					_, err = c.Send("x", fmt.Sprintf("w%d %d", w, i), 2000, nil)
				case 2:
					_, err = c.Channels()
				}
				if err != nil && ErrorCode(err) != CodePaused {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		if err := c.Pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := c.Resume(1000, nil); err != nil && ErrorCode(err) != CodeNoNodes {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestBadInput: each kind of bad input gets its code, and changes
// nothing.
func TestBadInput(t *testing.T) {
	_, err := Open(nil)
	wantCode(t, "open nil", err, CodeBadInput)
	_, err = Open(&Options{Home: filepath.Join(t.TempDir(), "empty")})
	wantCode(t, "open an empty home without create", err, CodeNotInitialised)
	_, err = Open(&Options{Home: filepath.Join(t.TempDir(), "x"), Create: true, LogLevel: "loud"})
	wantCode(t, "bad log level", err, CodeBadInput)

	c := open(t, "c")
	_, err = Open(&Options{Home: c.opts.Home})
	wantCode(t, "open a home in use", err, CodeLocked)
	key, err := c.CreateChannel("chat")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := c.ShareChannel("chat", "read", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.JoinChannel("ro", ro); ErrorCode(err) != CodeChannelExists {
		t.Fatalf("joining a channel twice: %v", err)
	}
	other := open(t, "other")
	if _, err := other.JoinChannel("ro", ro); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		what string
		err  error
		code int
	}{
		{"channel with a space", errOf(c.CreateChannel("a b")), CodeBadName},
		{"channel twice", errOf(c.CreateChannel("chat")), CodeChannelExists},
		{"join a damaged key", errOf(c.JoinChannel("d", key[:len(key)-3]+"zzz")), CodeBadKey},
		{"join garbage", errOf(c.JoinChannel("d", "hello")), CodeBadKey},
		{"send to an unknown channel", errOf(c.Send("nope", "x", 0, nil)), CodeUnknownChannel},
		{"send on a read-only key", errOf(other.Send("ro", "x", 0, nil)), CodeCannotWrite},
		{"share with a bad capability", errOf(c.ShareChannel("chat", "admin", true)), CodeBadInput},
		{"history of an unknown channel", errOf(c.History("nope", 0)), CodeUnknownChannel},
		{"history page of 0", errOf(c.HistoryBefore("chat", "", 0)), CodeBadInput},
		{"history before an unknown message", errOf(c.HistoryBefore("chat", "abcd", 5)), CodeUnknownMessage},
		{"check a pairing code that is not one", errOf(CheckPairingCode("http://example.com")), CodeBadPairingCode},
		{"pair with a code that is not one", errOf(c.Pair("RPPAIR1:nonsense", 1000, nil)), CodeBadPairingCode},
		{"set a ticket that is not one", errOf(c.SetTicket("ticket")), CodeBadTicket},
		{"issue a ticket to a bad identity", errOf(c.IssueTicket("rpi-nobody", 1)), CodeBadKey},
		{"accept an invitation that is not one", errOf(c.AcceptInvite("x", "rpinv-nope")), CodeBadInvitation},
		{"join a device with a bad link", errOf(JoinDevice(&Options{Home: filepath.Join(t.TempDir(), "d"), Create: true}, "rpdevNOPE", "tablet", 1000, nil)), CodeBadLink},
		{"backup under a weak passphrase", errOf(c.Backup("short")), CodeWeakPassphrase},
		{"remove an unknown node", c.RemoveNode(other.PeerID()), CodeUnknownNode},
		{"add a node without /p2p", errOf(c.AddNode("/ip4/127.0.0.1/tcp/4001")), CodeBadInput},
		{"owned node before pairing", errOf(c.OwnedNode()), CodeNotOwner},
		{"node status before pairing", errOf(c.NodeStatus("", 1000, nil)), CodeNotOwner},
		{"backup to a node before pairing", c.BackupToNode("a long enough passphrase", 5000, nil), CodeNotOwner},
		{"connect without nodes", c.Connect(1000, nil), CodeNoNodes},
		{"a tiny QR code", errOf(QRCodePNG("x", 10)), CodeBadInput},
		{"vouch for a bad address", errOf(c.AddContact("chat", "not an address", "49", "")), CodeBadContact},
		{"restore from a node that is not one", RestoreFromNode(filepath.Join(t.TempDir(), "r"), "nowhere", "a long enough passphrase", 1000, nil), CodeBadInput},
	} {
		wantCode(t, tc.what, tc.err, tc.code)
	}
	// Nothing changed.
	if chs, err := c.Channels(); err != nil || chs.Size() != 1 || chs.Get(0).Name != "chat" {
		t.Fatalf("channels after bad input: %v", err)
	}
	if ns, err := c.Nodes(); err != nil || ns.Size() != 0 {
		t.Fatalf("nodes after bad input: %v", err)
	}

	// Backups: a wrong passphrase, a damaged blob, a home in use.
	blob, err := c.Backup("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	wantCode(t, "restore with a wrong passphrase", Restore(dst, "wrong horse battery", blob), CodeWrongPassphrase)
	bad := slices.Clone(blob)
	bad[len(bad)-1] ^= 1
	wantCode(t, "restore a damaged backup", Restore(dst, "correct horse battery", bad), CodeCorruptBackup)
	wantCode(t, "restore into a home in use", Restore(other.opts.Home, "correct horse battery", blob), CodeLocked)
	used, err := Open(&Options{Home: filepath.Join(t.TempDir(), "used"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	used.Close()
	wantCode(t, "restore into a home with an identity", Restore(used.opts.Home, "correct horse battery", blob), CodeHomeNotEmpty)
	if err := Restore(dst, "correct horse battery", blob); err != nil {
		t.Fatal(err)
	}
	r, err := Open(&Options{Home: dst})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.ID() != c.ID() {
		t.Fatalf("restored identity %s, want %s", r.ID(), c.ID())
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestErrorCodes: every code has a distinct name, messages start with
// it, and docs/MOBILE.md lists them all.
func TestErrorCodes(t *testing.T) {
	names := map[string]bool{}
	for code := 1; code <= CodeRateLimited; code++ {
		n := ErrorName(code)
		if n == "" || names[n] {
			t.Errorf("code %d: name %q missing or repeated", code, n)
		}
		names[n] = true
		err := failCode(code, "detail")
		if !gostrings.HasPrefix(err.Error(), n+": ") || ErrorCode(err) != code || ErrorCodeOf(err.Error()) != code {
			t.Errorf("code %d: message %q", code, err)
		}
	}
	if len(codeNames) != CodeRateLimited {
		t.Errorf("%d names for %d codes", len(codeNames), CodeRateLimited)
	}
	if ErrorCode(nil) != 0 || ErrorCode(errors.New("other")) != CodeInternal || ErrorCodeOf("what: ever") != CodeInternal {
		t.Error("codes of foreign errors")
	}
	// An error wrapped by the app keeps its code.
	if ErrorCode(fmt.Errorf("ui: %w", failCode(CodeNotOwner, "x"))) != CodeNotOwner {
		t.Error("a wrapped error lost its code")
	}
	doc, err := os.ReadFile("../../docs/MOBILE.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, n := range codeNames {
		if row := fmt.Sprintf("| %d | `%s` |", code, n); !gostrings.Contains(string(doc), row) {
			t.Errorf("docs/MOBILE.md lacks the row %q", row)
		}
	}
}

// TestNoNetlink runs a phone under a seccomp filter that makes netlink
// sockets fail, as Android 11+ does (net.Interfaces fails): it still
// opens, connects, sends, pauses and resumes.
func TestNoNetlink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	home := filepath.Join(t.TempDir(), "phone")
	c, err := Open(&Options{Home: home, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	id := c.ID()
	c.Close()
	n := startNode(t, id)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoNetlinkChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), nonetlink.Env+"=1", "REDPANDA_CHILD_HOME="+home, "REDPANDA_CHILD_NODE="+n.Addrs()[0])
	out, err := cmd.CombinedOutput()
	if err != nil || !gostrings.Contains(string(out), "--- PASS: TestNoNetlinkChild") {
		t.Fatalf("phone under the filter: %v\n%s", err, out)
	}
}

// TestNoNetlinkChild is the phone of TestNoNetlink.
func TestNoNetlinkChild(t *testing.T) {
	home := os.Getenv("REDPANDA_CHILD_HOME")
	if home == "" {
		t.Skip("run by TestNoNetlink")
	}
	if err := nonetlink.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Interfaces(); err == nil {
		t.Fatal("net.Interfaces works under the filter")
	} else {
		t.Logf("net.Interfaces: %v", err)
	}
	c, err := Open(&Options{Home: home, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.AddNode(os.Getenv("REDPANDA_CHILD_NODE")); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateChannel("c"); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Send("c", "no netlink here", 0, nil); err != nil || !r.Delivered {
		t.Fatalf("send: %+v, %v", r, err)
	}
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(0, nil); err != nil {
		t.Fatal(err)
	}
	if !c.IsOnline() {
		t.Fatal("not online after Resume")
	}
}

// TestPauseStopsEverything: a paused client runs nothing but its
// dispatcher (no host, no sync service, no loop or timer of the SDK), and
// a closed one nothing at all.
func TestPauseStopsEverything(t *testing.T) {
	home := filepath.Join(t.TempDir(), "c")
	c, err := Open(&Options{Home: home, Create: true, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	n := startNode(t, c.ID())
	settle := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for runtime.NumGoroutine() > want {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()
	c, err = Open(&Options{Home: home, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetListener(newRecorder())
	if _, err := c.AddNode(n.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateChannel("x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(0, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	settle("paused", base+1) // the dispatcher
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	settle("closed", base)
}
