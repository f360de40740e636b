package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
)

const paperKey = "pr7768EZp1Y8PwQhozCfacTNjL4iRxgJqcm8NDVuyvhfYJDwkzJFTtCZ6"

func runCLI(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

// field returns the value of a "name: value" line.
func field(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", name, out)
	}
	return m[1]
}

func TestKeyNew(t *testing.T) {
	tests := []struct {
		args []string
		cap  channel.Capability
	}{
		{[]string{"key", "new"}, channel.CapabilityFull},
		{[]string{"key", "new", "--capability", "full"}, channel.CapabilityFull},
		{[]string{"key", "new", "--capability", "read"}, channel.CapabilityRead},
		{[]string{"key", "new", "-capability=write"}, channel.CapabilityWrite},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := runCLI(tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			k, err := channel.ParseKey(field(t, out, "key"))
			if err != nil {
				t.Fatal(err)
			}
			if k.Capability() != tt.cap || field(t, out, "capability") != tt.cap.String() || field(t, out, "channel") != k.ID().String() {
				t.Fatalf("output does not match the key:\n%s", out)
			}
			if tt.cap != channel.CapabilityFull {
				full, err := channel.ParseKey(field(t, out, "full key"))
				if err != nil || full.ID() != k.ID() || full.Capability() != channel.CapabilityFull {
					t.Fatalf("full key line: %v\n%s", err, out)
				}
			}
		})
	}
	a, _, _ := runCLI("key", "new")
	b, _, _ := runCLI("key", "new")
	if field(t, a, "key") == field(t, b, "key") {
		t.Fatal("two new keys are equal")
	}
}

func TestKeyInspect(t *testing.T) {
	full, _ := channel.KeyFromSecret(bytes.Repeat([]byte{7}, 32))
	read, _ := full.ReadOnly()
	write, _ := full.WriteOnly()
	for _, k := range []*channel.Key{full, read, write} {
		out, _, err := runCLI("key", "inspect", k.String())
		if err != nil {
			t.Fatal(err)
		}
		if field(t, out, "format") != "v2" || field(t, out, "capability") != k.Capability().String() || field(t, out, "channel") != full.ID().String() {
			t.Fatalf("inspect %s:\n%s", k.Capability(), out)
		}
	}

	out, _, err := runCLI("key", "inspect", " "+paperKey+"\n")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := channel.ParseLegacy(paperKey)
	imported, _ := channel.ParseKey(paperKey)
	if !strings.HasPrefix(field(t, out, "format"), "legacy") || field(t, out, "pu") != l.PublicString() ||
		field(t, out, "secp256k1") != "02a83aa64d1d122233c531b5b667d9b0e4bee9604990a6d2d2c9a0fb47e91e5555" ||
		field(t, out, "channel") != imported.ID().String() || field(t, out, "v2 key") != imported.String() {
		t.Fatalf("inspect pr:\n%s", out)
	}
	out, _, err = runCLI("key", "inspect", l.PublicString())
	if err != nil || field(t, out, "secp256k1") != "02a83aa64d1d122233c531b5b667d9b0e4bee9604990a6d2d2c9a0fb47e91e5555" {
		t.Fatalf("inspect pu: %v\n%s", err, out)
	}
}

func TestKeyShare(t *testing.T) {
	full, _ := channel.KeyFromSecret(bytes.Repeat([]byte{9}, 32))
	read, _ := full.ReadOnly()
	write, _ := full.WriteOnly()
	tests := []struct {
		args []string
		want *channel.Key
	}{
		{[]string{"key", "share", full.String(), "--capability", "read"}, read},
		{[]string{"key", "share", "--capability", "write", full.String()}, write},
		{[]string{"key", "share", read.String(), "--capability=read"}, read},
	}
	for _, tt := range tests {
		out, _, err := runCLI(tt.args...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if strings.TrimSpace(out) != tt.want.String() {
			t.Fatalf("%v printed %q, want %q", tt.args, out, tt.want)
		}
	}
}

func TestMisuse(t *testing.T) {
	full, _ := channel.KeyFromSecret(bytes.Repeat([]byte{11}, 32))
	read, _ := full.ReadOnly()
	write, _ := full.WriteOnly()
	tests := []struct {
		args  []string
		usage bool
		msg   string
	}{
		{nil, true, "needs a subcommand"},
		{[]string{"frobnicate"}, true, `unknown subcommand "frobnicate"`},
		{[]string{"key"}, true, "needs a subcommand"},
		{[]string{"key", "delete"}, true, `unknown subcommand "delete"`},
		{[]string{"key", "new", "--capability", "admin"}, true, `unknown capability "admin"`},
		{[]string{"key", "new", "extra"}, true, "takes no arguments"},
		{[]string{"key", "new", "--bogus"}, true, "flag provided but not defined"},
		{[]string{"key", "inspect"}, true, "exactly one key string"},
		{[]string{"key", "inspect", "a", "b"}, true, "exactly one key string"},
		{[]string{"key", "inspect", "xx123"}, false, "unknown prefix"},
		{[]string{"key", "inspect", paperKey[:10] + "0" + paperKey[11:]}, false, "invalid character '0' at position 11"},
		{[]string{"key", "inspect", paperKey[:56] + "7"}, false, "checksum mismatch"},
		{[]string{"key", "inspect", paperKey[:40]}, false, "wrong length"},
		{[]string{"key", "share", full.String()}, true, "needs --capability"},
		{[]string{"key", "share", full.String(), "--capability", "full"}, true, "must be read or write"},
		{[]string{"key", "share", "--capability", "read"}, true, "exactly one key string"},
		{[]string{"key", "share", read.String(), "--capability", "write"}, false, "cannot write"},
		{[]string{"key", "share", write.String(), "--capability", "read"}, false, "cannot read"},
		{[]string{"key", "share", "rpfnope", "--capability", "read"}, false, "wrong length"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := runCLI(tt.args...)
			if err == nil {
				t.Fatalf("accepted; printed %q", out)
			}
			if errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q (usage %v), want %q (usage %v)", err, errors.Is(err, errUsage), tt.msg, tt.usage)
			}
			if out != "" {
				t.Fatalf("printed %q on stdout despite the error", out)
			}
		})
	}
}

// TestBinary runs the real binary: errors go to stderr, the exit status
// is non-zero, and stdout stays clean.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := bins.redpanda
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"key", "inspect", paperKey}, 0, "legacy 1.0 pr", ""},
		{[]string{"key", "inspect", paperKey + "x"}, 1, "", "redpanda: key inspect: channel: key string"},
		{[]string{"key", "share"}, 2, "", "redpanda: usage:"},
	}
	for _, tt := range tests {
		var o, e bytes.Buffer
		cmd := exec.Command(bin, tt.args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(o.String(), tt.stdout) || !strings.Contains(e.String(), tt.stderr) ||
			(tt.stdout == "" && o.Len() != 0) {
			t.Fatalf("%v: exit %d stdout %q stderr %q", tt.args, code, o.String(), e.String())
		}
	}
}
