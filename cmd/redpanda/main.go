// Command redpanda is the reference light client: the phone, on a command
// line. It plays the phone in tests, demos and benchmarks. It must not know
// about the appliance (boards, systemd, provisioning internals).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and maps it to the exit status: 0 ok,
// 2 misuse, 1 anything else. Cancellation is not an error.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "redpanda: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "redpanda: %v\n", err)
		return 1
	}
}

// errUsage marks a command-line misuse.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// command is one node of the subcommand tree: either it runs, or it has
// subcommands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	subs    []*command
}

// commands is the tree; add a subcommand by adding an entry.
func commands() *command {
	return &command{name: "redpanda", subs: append(clientCommands(), ticketCommand(), keyCommand(), inviteCommand(), acceptCommand(), completeCommand(), pairCommand(), nodeCommand(), deviceCommand(), backupCommand(), friendsCommand(), contactsCommand())}
}

// run dispatches args to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, commands(), args, stdout, stderr)
}

func dispatch(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	if c.run != nil {
		return c.run(ctx, args, stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr, c)
		if len(args) == 0 {
			return usageErr("%s needs a subcommand", c.name)
		}
		return nil
	}
	for _, s := range c.subs {
		if s.name == args[0] {
			return dispatch(ctx, s, args[1:], stdout, stderr)
		}
	}
	printUsage(stderr, c)
	return usageErr("%s: unknown subcommand %q", c.name, args[0])
}

func printUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: %s <subcommand> ...\n\nsubcommands:\n", c.name)
	for _, s := range c.subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
}
