// Command rpattack runs the adversarial suite of internal/attack against a
// homenode binary: hostile peers on loopback source addresses attack a
// real node started under the shipped unit's memory limits while a real
// friend sends through it, and one report per attack class is printed
// (peak RSS, the friend's send latency, whether the heap came back, what
// the node let happen).
//
//	rpattack -homenode bin/homenode [-scale small|large] [-only a,b] [-dir DIR]
//
// It exits 1 when an attack found a problem. Run it as root for the memory
// cgroup; it sends traffic only to the loopback addresses it listens on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redpanda-p2p/homenode/internal/attack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpattack:", err)
		os.Exit(1)
	}
}

// errProblems: at least one attack found a problem.
var errProblems = errors.New("the node did not withstand every attack")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rpattack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("homenode", "bin/homenode", "the homenode binary to attack")
	scale := fs.String("scale", "large", "small (what make test runs) or large (the sizes of issue 19)")
	only := fs.String("only", "", "comma-separated attack names (default: all)")
	dir := fs.String("dir", "", "scratch directory (default: a temporary one, removed after)")
	noCgroup := fs.Bool("no-cgroup", false, "do not put the node under a memory cgroup")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sc attack.Scale
	switch *scale {
	case "small":
		sc = attack.Small
	case "large":
		sc = attack.Large
	default:
		return fmt.Errorf("-scale %q: want small or large", *scale)
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("-homenode: %w (make build first)", err)
	}
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "rpattack")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		d = tmp
	}
	cfg := attack.SuiteConfig{Binary: *bin, Dir: d, Scale: sc, Cgroup: !*noCgroup,
		Logf: func(f string, a ...any) { fmt.Fprintf(stderr, "rpattack: "+f+"\n", a...) },
		OnReport: func(r *attack.Report) {
			fmt.Fprint(stdout, r.String())
		}}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	fmt.Fprintf(stdout, "rpattack: scale %s, homenode %s, GOMEMLIMIT=%s\n", sc.Name, *bin, attack.GoMemLimit)
	reports, err := attack.RunSuite(ctx, cfg)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if len(r.Problems) > 0 {
			return errProblems
		}
	}
	return nil
}
