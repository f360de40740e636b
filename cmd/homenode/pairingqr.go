package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// runPairingQR prints the pairing QR code of the running node, asked from
// its admin socket, so that a separate unit (homenode-pairing-console.service)
// can show it on tty1 and the daemon itself needs no device access.
//
//	homenode pairing-qr [--watch] [--interval 5s]
//
// Without --watch it prints the QR once and fails when the node is not
// waiting for pairing. With --watch it redraws only when the URI changes
// (so a login prompt on the same console is not clobbered every few
// seconds), waits through node restarts, and exits 0 once the node is owned.
func runPairingQR(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("homenode pairing-qr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	watch := fs.Bool("watch", false, "keep showing the current QR code until the node is paired")
	interval := fs.Duration("interval", 5*time.Second, "with --watch: how often to ask the node")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"pairing-qr takes no arguments"}
	}
	if *interval <= 0 {
		return usageError{"--interval must be positive"}
	}
	cfg, err := cf.load(fs)
	if err != nil {
		return err
	}
	ask := func() (status.Pairing, error) {
		c, err := dialAdmin(ctx, cfg)
		if err != nil {
			return status.Pairing{}, err
		}
		defer c.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := c.Status(cctx)
		if err != nil {
			return status.Pairing{}, err
		}
		return r.Pairing, nil
	}
	if !*watch {
		p, err := ask()
		if err != nil {
			return err
		}
		if p.State != status.PairingWaiting || p.URI == "" {
			return fmt.Errorf("the node is not waiting for pairing (state %s)", p.State)
		}
		return drawPairingQR(stdout, p.URI, false)
	}

	// A getty starting on the same console may hang it up under us.
	if f, ok := stdout.(*os.File); ok {
		stdout = newConsoleWriter(f)
	}
	shown := ""
	for {
		p, err := ask()
		switch {
		case err != nil && errors.Is(err, errNotRunning):
			// The node is starting or restarting: keep waiting quietly.
		case err != nil:
			fmt.Fprintln(stderr, "homenode pairing-qr:", err)
		case p.State == status.PairingOwned:
			if shown != "" {
				fmt.Fprintf(stdout, "\x1b[2J\x1b[HPaired with %s. This node is now yours.\n", p.Owner)
			}
			return nil
		case p.State == status.PairingWaiting && p.URI != "" && p.URI != shown:
			if err := drawPairingQR(stdout, p.URI, true); err != nil {
				return err
			}
			shown = p.URI
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// drawPairingQR writes the QR code and the URI under it; clear first
// clears a terminal and homes the cursor.
func drawPairingQR(w io.Writer, uri string, clear bool) error {
	qr, err := provisioning.QRTerminal(uri)
	if err != nil {
		return err
	}
	if clear {
		fmt.Fprint(w, "\x1b[2J\x1b[H")
	}
	_, err = fmt.Fprintf(w, "Scan to pair this home node with the redPanda app:\n\n%s\n%s\n", qr, uri)
	return err
}
