package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/client"
)

// TestInviteCommands: invite, accept and complete through the CLI leave
// both homes in the same channel with the same safety code; a swapped
// string is refused with a hint.
func TestInviteCommands(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, h := range []string{a, b} {
		if _, _, err := runCLI("init", "--home", h); err != nil {
			t.Fatal(err)
		}
	}
	inv, _, err := runCLI("invite", "--home", a)
	if err != nil {
		t.Fatal(err)
	}
	inv = strings.TrimSpace(inv)
	if _, _, err := runCLI("complete", inv, "--home", a); !errors.Is(err, client.ErrWrongInvitationKind) {
		t.Fatalf("complete with the invitation: %v", err)
	}
	answer, stderr, err := runCLI("accept", inv, "alice", "--home", b)
	if err != nil {
		t.Fatal(err)
	}
	code := field(t, stderr, "safety code")
	out, _, err := runCLI("complete", strings.TrimSpace(answer), "bob", "--home", a)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, out, "safety code"); !strings.HasPrefix(code, got) {
		t.Fatalf("safety codes differ: %q vs %q", got, code)
	}
	ka, _, _ := runCLI("channel", "share", "bob", "--home", a)
	kb, _, _ := runCLI("channel", "share", "alice", "--home", b)
	if ka == "" || ka != kb {
		t.Fatalf("keys differ: %q vs %q", ka, kb)
	}
	// Both commands run again say the invitation was used already and
	// make no second channel.
	answer2, stderr, err := runCLI("accept", inv, "alice", "--home", b)
	if err != nil || answer2 != answer || !strings.Contains(stderr, "accepted this invitation already") {
		t.Fatalf("accept again: %v, %q, %q", err, answer2, stderr)
	}
	out, _, err = runCLI("complete", strings.TrimSpace(answer), "bob", "--home", a)
	if err != nil || !strings.Contains(out, "already completed") || field(t, out, "safety code") != field(t, stderr, "safety code") {
		t.Fatalf("complete again: %v, %q", err, out)
	}
	for _, h := range []string{a, b} {
		if out, _, _ := runCLI("channel", "list", "--json", "--home", h); strings.Count(out, `"ID"`) != 1 {
			t.Fatalf("channels after repeating: %s", out)
		}
	}
}
