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

	"github.com/redpanda-p2p/homenode/appliance"
	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/internal/logthrottle"
	"github.com/redpanda-p2p/homenode/internal/version"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// configFlags are the flags every subcommand that needs the configuration
// takes: the file, and overrides of its most used keys.
type configFlags struct {
	file      string
	dataDir   string
	http      string
	socket    string
	owner     string
	logLevel  string
	listen    listFlag
	peers     listFlag
	set       listFlag
	fileGiven bool
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", appliance.DefaultConfigFile, "configuration file (TOML; docs/CONFIG.md)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (default /var/lib/homenode, or systemd's STATE_DIRECTORY)")
	fs.StringVar(&c.http, "http", "", `status page and /metrics address ("lan:8080" = loopback and LAN only; "off")`)
	fs.StringVar(&c.socket, "admin-socket", "", "admin socket path (default RUNTIME_DIRECTORY/admin.sock or DATA_DIR/admin.sock)")
	fs.StringVar(&c.owner, "owner", "", "owner identity (rpi…, what `redpanda id` prints), instead of QR pairing")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error")
	fs.Var(&c.listen, "listen", "libp2p listen multiaddr (repeatable; default TCP and QUIC on port 4001)")
	fs.Var(&c.peers, "peer", "multiaddr ending in /p2p/ID of a node to keep connected (repeatable)")
	fs.Var(&c.set, "set", "KEY=VALUE for any configuration key (repeatable)")
}

// load builds the configuration: defaults, file, HOMENODE_* environment,
// flags.
func (c *configFlags) load(fs *flag.FlagSet) (appliance.Config, error) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			c.fileGiven = true
		}
	})
	cfg := appliance.Defaults()
	if err := cfg.LoadFile(c.file, c.fileGiven); err != nil {
		return cfg, err
	}
	if err := cfg.LoadEnv(os.Environ()); err != nil {
		return cfg, err
	}
	for _, kv := range c.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, usageError{fmt.Sprintf("--set %q: want KEY=VALUE", kv)}
		}
		if err := cfg.Set(k, v); err != nil {
			return cfg, usageError{err.Error()}
		}
	}
	for flagValue, key := range map[*string]string{&c.dataDir: "data_dir", &c.http: "http", &c.socket: "admin_socket", &c.owner: "owner", &c.logLevel: "log_level"} {
		if *flagValue != "" {
			if err := cfg.Set(key, *flagValue); err != nil {
				return cfg, usageError{err.Error()}
			}
		}
	}
	if len(c.listen) > 0 {
		cfg.Listen = c.listen
	}
	if len(c.peers) > 0 {
		cfg.Peers = c.peers
	}
	return cfg, nil
}

// parseFlags parses flags wherever they stand among the arguments
// (`homenode block CHANNEL --json` as well as `homenode block --json
// CHANNEL`); the positional arguments are left in fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse once more with only the positional arguments so fs.Args()
	// returns them.
	return fs.Parse(append([]string{"--"}, positional...))
}

// errHelp ends a command after -h printed its flags.
var errHelp = errors.New("help shown")

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("homenode run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("run takes no arguments, got %q", fs.Args())}
	}
	cfg, err := cf.load(fs)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return usageError{fmt.Sprintf("log_level: %v", err)}
	}
	logOut, _ := stderr.(*os.File)
	var handler slog.Handler
	if logOut != nil {
		handler = sdnotify.NewLogHandler(logOut, &slog.HandlerOptions{Level: level})
	} else {
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	// Repeated lines from one peer (a flood) are summarised, not written
	// one by one to the SD card (docs/SECURITY.md, "Logs").
	throttle := logthrottle.New(handler, logthrottle.Options{})
	tctx, stopThrottle := context.WithCancel(context.Background())
	throttled := make(chan struct{})
	go func() { throttle.Run(tctx, logthrottle.DefaultFlushEvery); close(throttled) }()
	defer func() { stopThrottle(); <-throttled }()
	log := slog.New(throttle)
	return appliance.Run(ctx, appliance.Options{
		Config:  cfg,
		Logger:  log,
		Console: stdout,
		Version: version.Version,
		Started: func(id string, addrs []string) {
			fmt.Fprintf(stdout, "peer id: %s\n", id)
			for _, a := range addrs {
				fmt.Fprintf(stdout, "address: %s\n", a)
			}
		},
	})
}
