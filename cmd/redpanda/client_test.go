package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestClientCommandsMisuse: every misuse gets an error that says what is
// wrong and what to do, and nothing on stdout.
func TestClientCommandsMisuse(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh")
	h := filepath.Join(dir, "h")
	if _, _, err := runCLI("init", "--home", h); err != nil {
		t.Fatal(err)
	}
	key, _, err := runCLI("channel", "new", "fam", "--home", h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := channel.ParseKey(strings.TrimSpace(key)); err != nil {
		t.Fatalf("channel new printed %q: %v", key, err)
	}
	// A ticket issued by this client to someone else is not this client's.
	other, _, _ := runCLI("init", "--home", fresh+"2")
	othersChain, _, err := runCLI("ticket", "issue", strings.TrimPrefix(strings.Split(other, "\n")[0], "identity: "), "--home", h)
	if err != nil {
		t.Fatal(err)
	}
	othersChain = strings.TrimSpace(othersChain)
	tests := []struct {
		args  []string
		usage bool
		msg   string
	}{
		{[]string{"id", "--home", fresh}, false, "run `redpanda init --home " + fresh + "` first"},
		{[]string{"send", "fam", "hi", "--home", fresh}, false, "not initialised"},
		{[]string{"send", "nope", "hi", "--home", h}, false, `unknown channel "nope" (channels here: [fam])`},
		{[]string{"send", "fam", "hi", "--home", h}, false, "no super nodes known (add one: `redpanda nodes add MULTIADDR`)"},
		{[]string{"send", "fam", "--home", h}, true, "usage: redpanda send CHANNEL TEXT"},
		{[]string{"history", "nope", "--home", h}, false, `unknown channel "nope"`},
		{[]string{"listen", "nope", "--home", h}, false, `unknown channel "nope"`},
		{[]string{"listen", "--home", h}, false, "no super nodes known"},
		{[]string{"nodes", "--home", h}, false, "no super nodes known"},
		{[]string{"nodes", "add", "/ip4/127.0.0.1/tcp/1", "--home", h}, false, "must end in /p2p/PEER-ID"},
		{[]string{"nodes", "add", "not-an-address", "--home", h}, false, "is not a multiaddr"},
		{[]string{"channel", "new", "fam", "--home", h}, false, `channel already exists: a channel named "fam"`},
		{[]string{"channel", "join", "x", strings.TrimSpace(key) + "x", "--home", h}, false, "key string"},
		{[]string{"channel", "join", "x", "--home", h}, true, "usage: redpanda channel join NAME KEY"},
		{[]string{"channel", "share", "fam", "--capability", "admin", "--home", h}, true, "must be read or write"},
		{[]string{"channel", "leave", "nope", "--home", h}, false, `unknown channel "nope"`},
		{[]string{"ticket", "issue", "rpi123", "--home", h}, false, "friend identity"},
		{[]string{"ticket", "set", "rptgarbage", "--home", h}, false, "routing: malformed"},
		{[]string{"ticket", "issue", "--home", h}, true, "usage: redpanda ticket issue IDENTITY"},
		{[]string{"ticket", "set", othersChain, "--home", h}, false, "chain was issued to another identity"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			out, _, err := runCLI(tt.args...)
			if err == nil || errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("%v: got %v, want usage=%v containing %q", tt.args, err, tt.usage, tt.msg)
			}
			if out != "" {
				t.Fatalf("printed %q on stdout despite the error", out)
			}
		})
	}
}

// TestChannelShare: the weaker key is printed, or a QR code of it.
func TestChannelShare(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	runCLI("init", "--home", h)
	out, _, err := runCLI("channel", "new", "fam", "--home", h)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := channel.ParseKey(strings.TrimSpace(out))
	read, _ := full.ReadOnly()
	if out, _, err := runCLI("channel", "share", "fam", "--capability", "read", "--home", h); err != nil || strings.TrimSpace(out) != read.String() {
		t.Fatalf("share read: %q %v", out, err)
	}
	if out, _, err := runCLI("channel", "share", "fam", "--home", h); err != nil || strings.TrimSpace(out) != full.String() {
		t.Fatalf("share: %q %v", out, err)
	}
	out, _, err = runCLI("channel", "share", "fam", "--capability", "read", "--qr", "--home", h)
	if err != nil || !strings.Contains(out, "█") || !strings.HasSuffix(strings.TrimSpace(out), read.String()) {
		t.Fatalf("share --qr: %q %v", out, err)
	}
	out, _, err = runCLI("channel", "list", "--json", "--home", h)
	if err != nil || !strings.Contains(out, full.ID().String()) || !strings.Contains(out, `"Capability":"full"`) {
		t.Fatalf("channel list --json: %q %v", out, err)
	}
}
