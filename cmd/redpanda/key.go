package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
)

func keyCommand() *command {
	return &command{name: "key", summary: "make, inspect and share channel keys", subs: []*command{
		{name: "new", summary: "make a new channel: key new [--capability full|read|write]", run: keyNew},
		{name: "inspect", summary: "show what a key string is: key inspect STRING", run: keyInspect},
		{name: "share", summary: "derive a weaker key: key share STRING --capability read|write", run: keyShare},
	}}
}

// parseFlags parses flags that may come before or after the positional
// arguments (Go's flag package stops at the first positional one).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	if fs.Lookup("home") == nil {
		// --home is global (`redpanda --home DIR key new`); a command that
		// keeps nothing in a client directory accepts and ignores it.
		fs.String("home", "", "ignored: this command uses no client directory")
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// keyNew makes a new channel. For a read or write capability it also
// prints the full key: without it nobody could ever do the other half.
func keyNew(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("key new", stderr)
	capName := fs.String("capability", "full", "capability of the printed key: full, read or write")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErr("key new takes no arguments, got %q", pos)
	}
	c, err := channel.ParseCapability(*capName)
	if err != nil {
		return usageErr("key new: %v", err)
	}
	full, err := channel.NewKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("key new: %w", err)
	}
	k, err := full.Share(c)
	if err != nil {
		return fmt.Errorf("key new: %w", err)
	}
	fmt.Fprintf(stdout, "channel:    %s\ncapability: %s\nkey:        %s\n", k.ID(), k.Capability(), k)
	if c != channel.CapabilityFull {
		fmt.Fprintf(stdout, "full key:   %s\n", full)
		fmt.Fprintln(stderr, "keep the full key private: it is the only way to read and write this channel")
	}
	return nil
}

func onePositional(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usageErr("%s needs exactly one key string, got %d arguments", fs.Name(), len(pos))
	}
	// Pasted strings often carry a newline or spaces at the ends.
	return strings.TrimSpace(pos[0]), nil
}

func keyInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("key inspect", stderr)
	s, err := onePositional(fs, args, "key string")
	if err != nil {
		return err
	}
	if strings.HasPrefix(s, channel.PrefixLegacyPrivate) || strings.HasPrefix(s, channel.PrefixLegacyPublic) {
		l, err := channel.ParseLegacy(s)
		if err != nil {
			return fmt.Errorf("key inspect: %w", err)
		}
		if l.Prefix == channel.PrefixLegacyPublic {
			fmt.Fprintf(stdout, "format:     legacy 1.0 pu (secp256k1 public key)\ncapability: none (a public key grants no access)\nsecp256k1:  %s\n",
				hex.EncodeToString(l.Public))
			return nil
		}
		k, err := channel.ParseKey(s)
		if err != nil {
			return fmt.Errorf("key inspect: %w", err)
		}
		fmt.Fprintf(stdout, "format:     legacy 1.0 pr (secp256k1 private key)\ncapability: %s (imported as a v2 channel)\nchannel:    %s\nsecp256k1:  %s\npu:         %s\nv2 key:     %s\n",
			k.Capability(), k.ID(), hex.EncodeToString(l.Public), l.PublicString(), k)
		return nil
	}
	if strings.HasPrefix(s, channel.PrefixIdentity) {
		p, err := channel.ParseIdentityKey(s)
		if err != nil {
			return fmt.Errorf("key inspect: %w", err)
		}
		fmt.Fprintf(stdout, "format:     v2 identity (author public key)\ncapability: none\nidentity:   %s\n", p.Hex())
		return nil
	}
	k, h, err := channel.ParseKeyHint(s)
	if err != nil {
		return fmt.Errorf("key inspect: %w", err)
	}
	fmt.Fprintf(stdout, "format:     v2\ncapability: %s\nchannel:    %s\n", k.Capability(), k.ID())
	if h == nil {
		return nil
	}
	nodes, err := hint.Decode(h)
	if err != nil {
		fmt.Fprintf(stdout, "node hint:  unreadable (%v); the key itself is fine\n", err)
		return nil
	}
	for _, n := range nodes {
		fmt.Fprintf(stdout, "home node:  %s", n.ID)
		for _, a := range n.Addrs {
			fmt.Fprintf(stdout, " %s", a)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func keyShare(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("key share", stderr)
	capName := fs.String("capability", "", "capability to share: read or write (required)")
	s, err := onePositional(fs, args, "key string")
	if err != nil {
		return err
	}
	var c channel.Capability
	switch *capName {
	case "read":
		c = channel.CapabilityRead
	case "write":
		c = channel.CapabilityWrite
	case "":
		return usageErr("key share needs --capability read|write")
	default:
		return usageErr("key share: --capability must be read or write, not %q (to share full access, give the key itself)", *capName)
	}
	k, err := channel.ParseKey(s)
	if err != nil {
		return fmt.Errorf("key share: %w", err)
	}
	shared, err := k.Share(c)
	if err != nil {
		return fmt.Errorf("key share: %w", err)
	}
	fmt.Fprintln(stdout, shared)
	return nil
}
