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

'homenode COMMAND -h' shows a command's flags.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
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
