package admin_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// memBackend keeps users and channels in memory with the real revocation
// rule: revoking an identity removes everyone it sponsored, transitively.
type memBackend struct {
	mu    sync.Mutex
	users []status.User
	chans []status.Channel
}

func newBackend() *memBackend {
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	return &memBackend{
		users: []status.User{
			{Identity: "owner", Hop: 0, Registered: at},
			{Identity: "alice", Hop: 1, Sponsor: "owner", Registered: at},
			{Identity: "bob", Hop: 2, Sponsor: "alice", Registered: at},
			{Identity: "carol", Hop: 3, Sponsor: "bob", Registered: at},
			{Identity: "dave", Hop: 1, Sponsor: "owner", Registered: at},
			{Identity: "eve", Hop: status.HopInfinity, Registered: at},
		},
		chans: statustest.Sample().Channels,
	}
}

func (b *memBackend) Status(context.Context) (status.Report, error) { return statustest.Sample(), nil }
func (b *memBackend) Peers(context.Context) ([]status.Peer, error) {
	return statustest.Sample().Peers.List, nil
}
func (b *memBackend) Users(context.Context) ([]status.User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.users), nil
}
func (b *memBackend) Channels(context.Context) ([]status.Channel, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.chans), nil
}

func (b *memBackend) Revoke(_ context.Context, id string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.ContainsFunc(b.users, func(u status.User) bool { return u.Identity == id }) {
		return nil, fmt.Errorf("revoke %s: %w", id, admin.ErrNotFound)
	}
	gone := map[string]bool{id: true}
	for changed := true; changed; {
		changed = false
		for _, u := range b.users {
			if gone[u.Sponsor] && !gone[u.Identity] {
				gone[u.Identity], changed = true, true
			}
		}
	}
	var removed []string
	b.users = slices.DeleteFunc(b.users, func(u status.User) bool {
		if gone[u.Identity] {
			removed = append(removed, u.Identity)
		}
		return gone[u.Identity]
	})
	return removed, nil
}

func (b *memBackend) setBlocked(id string, blocked bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.chans {
		if b.chans[i].ID == id {
			b.chans[i].Blocked = blocked
			return nil
		}
	}
	return fmt.Errorf("channel %s: %w", id, admin.ErrNotFound)
}
func (b *memBackend) Block(_ context.Context, id string) error   { return b.setBlocked(id, true) }
func (b *memBackend) Unblock(_ context.Context, id string) error { return b.setBlocked(id, false) }
func (b *memBackend) Reset(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users, b.chans = nil, nil
	return nil
}

// start serves b on a fresh socket and returns its path.
func start(t *testing.T, b admin.Backend, group string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := admin.Listen(path, group)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	srv := &admin.Server{Backend: b, Logger: slog.New(slog.DiscardHandler)}
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind after stop: %v", err)
		}
	})
	return path
}

func dial(t *testing.T, path string) *admin.Client {
	t.Helper()
	c, err := admin.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTrip(t *testing.T) {
	b := newBackend()
	c := dial(t, start(t, b, ""))
	ctx := context.Background()
	chID := statustest.Channel

	tests := []struct {
		name  string
		run   func() (any, error)
		check func(t *testing.T, v any)
	}{
		{"status", func() (any, error) { return c.Status(ctx) }, func(t *testing.T, v any) {
			if got, want := status.StatusLine(v.(status.Report)), status.StatusLine(statustest.Sample()); got != want {
				t.Errorf("status line %q, want %q", got, want)
			}
		}},
		{"peers", func() (any, error) { return c.Peers(ctx) }, func(t *testing.T, v any) {
			if p := v.([]status.Peer); len(p) != 3 || p[0].ID != statustest.Peer1 || p[0].Latency != 23*time.Millisecond {
				t.Errorf("peers %+v", p)
			}
		}},
		{"users", func() (any, error) { return c.Users(ctx) }, func(t *testing.T, v any) {
			if u := v.([]status.User); len(u) != 6 || u[5].Hop != status.HopInfinity {
				t.Errorf("users %+v", u)
			}
		}},
		{"channels", func() (any, error) { return c.Channels(ctx) }, func(t *testing.T, v any) {
			if ch := v.([]status.Channel); len(ch) != 3 || ch[0].Messages != 1200 || !ch[2].Control {
				t.Errorf("channels %+v", ch)
			}
		}},
		{"revoke cascades", func() (any, error) { return c.Revoke(ctx, "alice") }, func(t *testing.T, v any) {
			if got := v.([]string); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
				t.Errorf("revoked %v", got)
			}
			users, _ := c.Users(ctx)
			if len(users) != 3 {
				t.Errorf("after revoke %d users remain, want 3", len(users))
			}
		}},
		{"block", func() (any, error) { return nil, c.Block(ctx, chID) }, func(t *testing.T, _ any) {
			ch, _ := c.Channels(ctx)
			if !ch[0].Blocked {
				t.Error("channel not blocked")
			}
		}},
		{"unblock", func() (any, error) { return nil, c.Unblock(ctx, chID) }, func(t *testing.T, _ any) {
			ch, _ := c.Channels(ctx)
			if ch[0].Blocked {
				t.Error("channel still blocked")
			}
		}},
		{"reset", func() (any, error) { return nil, c.Reset(ctx) }, func(t *testing.T, _ any) {
			if users, _ := c.Users(ctx); len(users) != 0 {
				t.Errorf("after reset %d users remain", len(users))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.run()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

func TestBackendErrorsKeepTheirMeaning(t *testing.T) {
	c := dial(t, start(t, newBackend(), ""))
	ctx := context.Background()
	for name, err := range map[string]error{
		"revoke unknown":  func() error { _, err := c.Revoke(ctx, "mallory"); return err }(),
		"block unknown":   c.Block(ctx, "nochannel"),
		"unblock unknown": c.Unblock(ctx, "nochannel"),
	} {
		if !errors.Is(err, admin.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	// The connection is still usable after an error.
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status after errors: %v", err)
	}
}

// rawExchange writes bytes to the socket and reads one response line.
func rawExchange(t *testing.T, path string, req string) (string, net.Conn) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(req, "\n") {
		conn.(*net.UnixConn).CloseWrite() // EOF completes the last line
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no response to %.60q: %v", req, err)
	}
	return line, conn
}

func TestProtocolErrors(t *testing.T) {
	path := start(t, newBackend(), "")
	tests := []struct {
		name, req, code, msg string
	}{
		{"unknown command", `{"cmd":"reboot"}` + "\n", "unknown_command", `reboot`},
		{"not JSON", "status\n", "malformed", "invalid character"},
		{"unknown field", `{"cmd":"status","x":1}` + "\n", "malformed", "unknown field"},
		{"missing argument", `{"cmd":"revoke"}` + "\n", "malformed", "revoke needs an argument"},
		{"unexpected argument", `{"cmd":"peers","arg":"x"}` + "\n", "malformed", "takes no argument"},
		{"two values", `{"cmd":"status"}{"cmd":"peers"}` + "\n", "malformed", "more than one"},
		{"oversized", `{"cmd":"revoke","arg":"` + strings.Repeat("A", 2*admin.MaxRequestSize) + "\"}\n", "too_large", "limit 4096"},
		{"no trailing newline", `{"cmd":"bogus"}`, "unknown_command", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, _ := rawExchange(t, path, tt.req)
			if !strings.Contains(line, `"ok":false`) || !strings.Contains(line, `"code":"`+tt.code+`"`) || !strings.Contains(line, tt.msg) {
				t.Errorf("response %s, want code %s mentioning %q", line, tt.code, tt.msg)
			}
		})
	}
}

func TestClientMapsProtocolErrors(t *testing.T) {
	c := dial(t, start(t, newBackend(), ""))
	ctx := context.Background()
	if _, err := c.Call(ctx, "reboot", ""); !errors.Is(err, admin.ErrUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := c.Call(ctx, admin.CmdBlock, ""); !errors.Is(err, admin.ErrMalformedRequest) {
		t.Errorf("missing argument: %v", err)
	}
	if _, err := c.Call(ctx, admin.CmdRevoke, strings.Repeat("x", admin.MaxRequestSize)); !errors.Is(err, admin.ErrRequestTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

func TestSocketPermissions(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("cannot name this process's group: %v", err)
	}
	for _, group := range []string{"", g.Name} {
		t.Run("group="+group, func(t *testing.T) {
			path := start(t, newBackend(), group)
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != admin.SocketMode {
				t.Errorf("mode %v, want socket %v", fi.Mode(), admin.SocketMode)
			}
			if gid := fi.Sys().(*syscall.Stat_t).Gid; strconv.Itoa(int(gid)) != g.Gid {
				t.Errorf("gid %d, want %s", gid, g.Gid)
			}
		})
	}
	if _, err := admin.Listen(filepath.Join(t.TempDir(), "a.sock"), "no-such-group-h6"); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestStaleAndLiveSockets(t *testing.T) {
	dir := t.TempDir()

	// A crash leaves the socket file with nobody listening.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if l2, err := admin.Listen(stale, ""); err != nil {
		t.Errorf("stale socket not replaced: %v", err)
	} else {
		l2.Close()
	}

	live := start(t, newBackend(), "")
	if _, err := admin.Listen(live, ""); !errors.Is(err, admin.ErrSocketInUse) {
		t.Errorf("second node on a live socket: %v, want ErrSocketInUse", err)
	}
	dial(t, live) // the running node still has its socket

	file := filepath.Join(dir, "precious")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if _, err := admin.Listen(file, ""); !errors.Is(err, admin.ErrNotSocket) {
		t.Errorf("regular file: %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("regular file was touched")
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line string
		want admin.Request
		err  error
	}{
		{`{"cmd":"status"}`, admin.Request{Cmd: "status"}, nil},
		{`{"cmd":"block","arg":"rpc1x"}`, admin.Request{Cmd: "block", Arg: "rpc1x"}, nil},
		{`{"cmd":"Status"}`, admin.Request{}, admin.ErrUnknownCommand},
		{``, admin.Request{}, admin.ErrMalformedRequest},
		{`null`, admin.Request{}, admin.ErrUnknownCommand},
		{`[1]`, admin.Request{}, admin.ErrMalformedRequest},
		{strings.Repeat(" ", admin.MaxRequestSize+1), admin.Request{}, admin.ErrRequestTooLarge},
	}
	for _, tt := range tests {
		got, err := admin.ParseRequest([]byte(tt.line))
		if !errors.Is(err, tt.err) || (tt.err == nil && got != tt.want) {
			t.Errorf("ParseRequest(%.40q) = %+v, %v; want %+v, %v", tt.line, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"cmd":"status"}`, `{"cmd":"revoke","arg":"x"}`, `{"cmd":1}`, `{`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := admin.ParseRequest(line)
		if err != nil {
			if !errors.Is(err, admin.ErrMalformedRequest) && !errors.Is(err, admin.ErrUnknownCommand) && !errors.Is(err, admin.ErrRequestTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		switch req.Cmd {
		case admin.CmdRevoke, admin.CmdBlock, admin.CmdUnblock:
			if req.Arg == "" {
				t.Fatal("accepted a command without its argument")
			}
		case admin.CmdStatus, admin.CmdPeers, admin.CmdUsers, admin.CmdChannels:
		default:
			t.Fatalf("accepted unknown command %q", req.Cmd)
		}
	})
}
