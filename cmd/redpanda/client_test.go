package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/client"
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

// TestGlobalFlagsBeforeTheSubcommand: --home and --json may stand before
// the subcommand, between its words or after it, as people type them
// (`redpanda --home DIR init` is the README's first command).
func TestGlobalFlagsBeforeTheSubcommand(t *testing.T) {
	dir := t.TempDir()
	h := filepath.Join(dir, "h")
	out, _, err := runCLI("--home", h, "init")
	if err != nil || !strings.Contains(out, "home:     "+h) {
		t.Fatalf("--home DIR init: %v %q", err, out)
	}
	for _, args := range [][]string{
		{"--home", h, "channel", "new", "fam"},
		{"--home=" + h, "channel", "list"},
		{"-home", h, "--json", "channel", "list"},
		{"channel", "--home", h, "list", "--json"},
		{"channel", "list", "--home", h},
		{"--home", h, "key", "new"}, // a command that needs no home takes it and ignores it
		{"--home", h, "nodes", "add", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7"},
		{"--home", h, "history", "fam"},
	} {
		if _, e, err := runCLI(args...); err != nil {
			t.Errorf("%v: %v %s", args, err, e)
		}
	}
	out, _, err = runCLI("--json", "--home", h, "channel", "list")
	if err != nil || !strings.HasPrefix(out, `[{"Name":"fam"`) {
		t.Fatalf("--json before: %v %q", err, out)
	}
	// A later flag wins over an earlier one.
	if _, _, err := runCLI("--home", filepath.Join(dir, "none"), "channel", "list", "--home", h); err != nil {
		t.Fatalf("later --home: %v", err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--hoem", h, "init"}, `unknown flag "--hoem" before the subcommand`},
		{[]string{"--home", h}, "needs a subcommand"},
		{[]string{"--json", "key", "inspect", "rpfx"}, "flag provided but not defined: -json"},
		{[]string{"init", "--home"}, "flag needs an argument"},
	} {
		if _, _, err := runCLI(tc.args...); err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.msg)
		}
	}
}

// TestNodesRemove: a node added by hand is forgotten by nodes remove,
// by peer ID or by its multiaddr; an unknown one is an error.
func TestNodesRemove(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	runCLI("init", "--home", h)
	const id = "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7"
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + id
	for _, arg := range []string{id, addr} {
		if _, _, err := runCLI("nodes", "add", addr, "--home", h); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI("nodes", "remove", arg, "--home", h)
		if err != nil || !strings.Contains(out, "removed") {
			t.Fatalf("nodes remove %s: %v %q", arg, err, out)
		}
		if _, _, err := runCLI("nodes", "--home", h); err == nil || !strings.Contains(err.Error(), "no super nodes known") {
			t.Fatalf("nodes after remove: %v", err)
		}
	}
	if _, _, err := runCLI("nodes", "remove", id, "--home", h); !errors.Is(err, client.ErrUnknownNode) {
		t.Fatalf("removing an unknown node: %v", err)
	}
	if _, _, err := runCLI("nodes", "remove", "nonsense", "--home", h); err == nil || !strings.Contains(err.Error(), "neither a peer ID") {
		t.Fatalf("removing nonsense: %v", err)
	}
}
