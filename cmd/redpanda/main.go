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
	"strings"
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

// command is one node of the subcommand tree: it runs, or it has
// subcommands, or both (`nodes` lists, `nodes add` adds).
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
	return dispatch(ctx, commands(), args, nil, stdout, stderr)
}

// dispatch walks args down the tree. Global flags (--home, --json) may
// stand before any subcommand name, as in `redpanda --home DIR init`:
// they are collected on the way and handed to the command that runs,
// ahead of its own arguments, so a later flag wins.
func dispatch(ctx context.Context, c *command, args, globals []string, stdout, stderr io.Writer) error {
	for len(args) > 0 {
		g, n := globalFlag(args)
		if n == 0 {
			break
		}
		globals, args = append(globals, g), args[n:]
	}
	if len(args) > 0 {
		for _, s := range c.subs {
			if s.name == args[0] {
				return dispatch(ctx, s, args[1:], globals, stdout, stderr)
			}
		}
	}
	if c.run != nil {
		return c.run(ctx, append(globals, args...), stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr, c)
		if len(args) == 0 {
			return usageErr("%s needs a subcommand", c.name)
		}
		return nil
	}
	printUsage(stderr, c)
	if strings.HasPrefix(args[0], "-") {
		return usageErr("%s: unknown flag %q before the subcommand (only --home and --json may stand there)", c.name, args[0])
	}
	return usageErr("%s: unknown subcommand %q", c.name, args[0])
}

// globalFlags are the flags every client command takes, by whether they
// take a value.
var globalFlags = map[string]bool{"home": true, "json": false}

// globalFlag reads one global flag at the start of args: it returns the
// flag as one argument ("--home=DIR") and how many arguments it used,
// or 0 when args does not start with one.
func globalFlag(args []string) (string, int) {
	a := args[0]
	name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
		return "", 0
	}
	takesValue, ok := globalFlags[name]
	switch {
	case !ok:
		return "", 0
	case hasValue || !takesValue:
		return a, 1
	case len(args) < 2:
		return "", 0 // let the command say the value is missing
	}
	return "--" + name + "=" + args[1], 2
}

func printUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: %s [--home DIR] [--json] <subcommand> ...\n\nsubcommands:\n", c.name)
	for _, s := range c.subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
}
