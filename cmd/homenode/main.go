// Command homenode is the redPanda home node daemon: a super node that
// relays and stores its owner's friends' end-to-end-encrypted messages.
//
//	homenode run --data-dir DIR [--listen MULTIADDR]... [--peer MULTIADDR]...
//
// `run` is the default subcommand. main calls run, which returns an error;
// SIGINT and SIGTERM cancel its context, and cancellation is not an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redpanda-p2p/homenode/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errHelp) {
		err = nil
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "homenode:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: homenode [COMMAND] [FLAGS]

commands:
  run       run the node (the default)
  status    the running node's status
  peers     connected peers
  users     registered users, by hop
  channels  channels served
  revoke    IDENTITY: remove a user and everyone they sponsored
  block     CHANNEL: stop storing, relaying and serving a channel
  unblock   CHANNEL: serve a blocked channel again
  branch    CHANNEL: who asked for a channel, through which trust chains
  prune     CHANNEL: revoke the sponsors that brought a channel in
  reset     factory reset: forget the owner and stored messages, pair again
  pairing-qr  the pairing QR code while the node waits for pairing (--watch: until paired)
  update    firmware updates of the SD-card image: status, apply FILE (docs/UPDATES.md)
  version   print the version

'homenode COMMAND -h' shows a command's flags; flags may stand before or
after the command (homenode --data-dir DIR status).
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, args, err := splitCommand(args)
	if err != nil {
		fmt.Fprint(stderr, usage)
		return err
	}
	if _, ok := adminCommands[cmd]; ok {
		return runAdmin(ctx, cmd, args, stdin, stdout, stderr)
	}
	switch cmd {
	case "run":
		return runNode(ctx, args, stdout, stderr)
	case "reset":
		return runReset(ctx, args, stdin, stdout, stderr)
	case "pairing-qr":
		return runPairingQR(ctx, args, stdout, stderr)
	case "update":
		return runUpdate(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "homenode", version.Version)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// valueFlags are the flags of any subcommand that take a value; the rest
// are booleans. splitCommand needs them to tell a flag's value from the
// command name.
var valueFlags = map[string]bool{"config": true, "data-dir": true, "http": true, "admin-socket": true,
	"owner": true, "log-level": true, "listen": true, "peer": true, "set": true}

// isCommand reports whether name is a subcommand.
func isCommand(name string) bool {
	if _, ok := adminCommands[name]; ok {
		return true
	}
	switch name {
	case "run", "reset", "pairing-qr", "update", "version", "help":
		return true
	}
	return false
}

// splitCommand finds the subcommand wherever the flags put it (`homenode
// --data-dir DIR status` as well as `homenode status --data-dir DIR`)
// and returns it with the other arguments in their order. With no
// command word it is "run"; the first word that is not a flag's value
// must be a command.
func splitCommand(args []string) (string, []string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if valueFlags[name] && !hasValue {
				i++ // skip the value
			}
			continue
		}
		if !isCommand(a) {
			return "", nil, usageError{fmt.Sprintf("unknown command %q", a)}
		}
		rest := append(append([]string{}, args[:i]...), args[i+1:]...)
		return a, rest, nil
	}
	return "run", args, nil
}
