package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func isExit(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// TestUpdateCommandLines runs the real binary with the command lines the
// update units and docs/UPDATES.md use, the flags before or after the
// command words. On this machine (not the A/B image) the commit step has
// nothing to do and must succeed; the fallback check says "stay up"
// (exit status 1, which homenode-fallback.service's ExecCondition= takes as
// "do not reboot").
func TestUpdateCommandLines(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"update", "commit", "--data-dir", dir, "--timeout", "1s"},
		{"--data-dir", dir, "update", "commit"},
		{"update", "--timeout", "1s", "--data-dir", dir, "commit"},
	} {
		out, e, err := homenode(t, "", args...)
		if err != nil || !strings.Contains(out, "nothing to commit") {
			t.Errorf("%q: %v\n%s%s", args, err, out, e)
		}
	}
	for _, args := range [][]string{
		{"update", "status", "--data-dir", dir},
		{"--data-dir", dir, "update", "status"},
	} {
		out, e, err := homenode(t, "", args...)
		if err != nil || !strings.Contains(out, "not an A/B system") {
			t.Errorf("%q: %v\n%s%s", args, err, out, e)
		}
	}
	// Off the image the fallback never asks for a reboot.
	if _, e, err := homenode(t, "", "update", "fallback", "--data-dir", dir); !isExit(err, 1) || !strings.Contains(e, "not rebooting") {
		t.Errorf("fallback off the image: %v %s, want exit status 1, not rebooting", err, e)
	}
	// Off the image the installer refuses, saying why.
	if _, e, err := homenode(t, "", "update", "install-request", "--data-dir", dir); err == nil || !strings.Contains(e, "not an A/B system") {
		t.Errorf("install-request off the image: %v %s", err, e)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"update"}, "update needs a command"},
		{[]string{"update", "frobnicate", "--data-dir", dir}, `unknown update command "frobnicate"`},
	} {
		if _, e, err := homenode(t, "", tc.args...); err == nil || !strings.Contains(e, tc.want) {
			t.Errorf("%q: %v %s, want %q", tc.args, err, e, tc.want)
		}
	}
}

func TestSplitUpdateCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cmd  string
		rest string
	}{
		{nil, "", ""},
		{[]string{"commit"}, "commit", ""},
		{[]string{"--data-dir", "d", "commit"}, "commit", "--data-dir d"},
		{[]string{"--tries", "2", "apply", "F"}, "apply", "--tries 2 F"},
		{[]string{"--timeout=1m", "commit", "--json"}, "commit", "--timeout=1m --json"},
		{[]string{"--data-dir", "status"}, "", "--data-dir status"}, // a directory named status
	} {
		cmd, rest := splitUpdateCommand(tc.args)
		if cmd != tc.cmd || strings.Join(rest, " ") != tc.rest {
			t.Errorf("%q: %q %q, want %q %q", tc.args, cmd, rest, tc.cmd, tc.rest)
		}
	}
}
