package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// defaultDataDir is systemd's StateDirectory when run as the service,
// else the packaged location.
func defaultDataDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	return "/var/lib/homenode"
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("homenode run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "directory for the node's identity and store")
	var listen, peers, serve listFlag
	fs.Var(&listen, "listen", "multiaddr to listen on (repeatable; default TCP and QUIC on port 4001)")
	fs.Var(&peers, "peer", "multiaddr ending in /p2p/ID of a node to keep connected (repeatable)")
	fs.Var(&serve, "serve", "channel ID (hex) or key string to serve from the start (repeatable)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("run takes no arguments, got %q", fs.Args())}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var chans []channel.ID
	for _, s := range serve {
		id, err := parseChannel(s)
		if err != nil {
			return usageError{fmt.Sprintf("--serve %q: %v", s, err)}
		}
		chans = append(chans, id)
	}

	n, err := node.New(node.Config{
		DataDir:  *dataDir,
		Peers:    peers,
		Channels: chans,
		P2P:      p2p.Config{ListenAddrs: listen},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	fmt.Fprintf(stdout, "peer id: %s\n", n.Host.ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(stdout, "address: %s\n", a)
	}
	<-ctx.Done()
	log.Info("shutting down")
	if err := n.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// parseChannel accepts a channel ID in hex or any key string of the
// channel (whose ID it takes).
func parseChannel(s string) (channel.ID, error) {
	if id, err := channel.ParseID(s); err == nil {
		return id, nil
	}
	k, err := channel.ParseKey(s)
	if err != nil {
		return channel.ID{}, fmt.Errorf("neither a 64-digit hex channel ID nor a key string: %w", err)
	}
	return k.ID(), nil
}
