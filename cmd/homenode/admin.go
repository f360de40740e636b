package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redpanda-p2p/homenode/appliance"
	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/status"
)

// adminCommands are the subcommands that talk to a running node over its
// admin socket; the value says whether it takes one argument.
var adminCommands = map[string]bool{
	"status": false, "peers": false, "users": false, "channels": false,
	"revoke": true, "block": true, "unblock": true, "branch": true, "prune": true,
}

func runAdmin(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("homenode "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	want := 0
	if adminCommands[cmd] {
		want = 1
	}
	if fs.NArg() != want {
		if want == 1 {
			return usageError{fmt.Sprintf("%s takes exactly one argument (%s)", cmd, argName(cmd))}
		}
		return usageError{fmt.Sprintf("%s takes no arguments", cmd)}
	}
	cfg, err := cf.load(fs)
	if err != nil {
		return err
	}
	c, err := dialAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if *asJSON {
		raw, err := c.Call(ctx, cmd, fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", raw)
		return err
	}
	now := time.Now()
	switch cmd {
	case "status":
		r, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return status.Render(stdout, r)
	case "peers":
		ps, err := c.Peers(ctx)
		if err != nil {
			return err
		}
		return admin.RenderPeers(stdout, ps)
	case "users":
		us, err := c.Users(ctx)
		if err != nil {
			return err
		}
		return admin.RenderUsers(stdout, us, now)
	case "channels":
		cs, err := c.Channels(ctx)
		if err != nil {
			return err
		}
		return admin.RenderChannels(stdout, cs, now)
	case "revoke":
		ids, err := c.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		return admin.RenderRevoked(stdout, ids)
	case "block":
		if err := c.Block(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "blocked %s: its messages are no longer stored, relayed or served\n", fs.Arg(0))
	case "unblock":
		if err := c.Unblock(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unblocked %s\n", fs.Arg(0))
	case "branch":
		us, err := c.Branch(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		return admin.RenderBranch(stdout, us)
	case "prune":
		ids, err := c.Prune(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		return admin.RenderRevoked(stdout, ids)
	}
	return nil
}

func argName(cmd string) string {
	if cmd == "revoke" {
		return "an identity, rpi…"
	}
	return "a channel ID or key string"
}

func adminSocket(cfg appliance.Config) string {
	if cfg.AdminSocket != "" {
		return cfg.AdminSocket
	}
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return filepath.Join(strings.Split(d, ":")[0], "admin.sock")
	}
	// A node run by hand (`make run`) keeps its socket in its data
	// directory: that one, when it is there, even on a box where the
	// service runs too.
	own := filepath.Join(cfg.DataDir, "admin.sock")
	if fi, err := os.Stat(own); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return own
	}
	// A user outside the node's group may not even look into
	// /run/homenode: that is still the socket, and dialAdmin says why it
	// cannot be used.
	if _, err := os.Stat("/run/homenode/admin.sock"); err == nil || errors.Is(err, os.ErrPermission) {
		return "/run/homenode/admin.sock"
	}
	return filepath.Join(cfg.DataDir, "admin.sock")
}

// errNotRunning says no node answers on the admin socket.
var errNotRunning = errors.New("no running node")

// errNoAccess says this user may not use the admin socket.
var errNoAccess = errors.New("permission denied")

func dialAdmin(ctx context.Context, cfg appliance.Config) (*admin.Client, error) {
	path := adminSocket(cfg)
	c, err := admin.Dial(ctx, path)
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("%w: %s", errNoAccess, noAccessHint(path))
	}
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v; is homenode running? (systemctl status homenode)", errNotRunning, path, err)
	}
	return c, nil
}

// noAccessHint says who may use the socket at path: the group of the
// socket, or of its directory when this user cannot even look inside.
func noAccessHint(path string) string {
	who := "you"
	if u, err := user.Current(); err == nil {
		who = "user " + u.Username
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			break
		}
		group := strconv.FormatUint(uint64(st.Gid), 10)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
		return fmt.Sprintf("%s may not use the node's admin socket %s (%s is for group %s, mode %04o): "+
			"run the command as root (sudo), or join the group (sudo adduser $USER %s) and log in again",
			who, path, p, group, fi.Mode().Perm(), group)
	}
	return fmt.Sprintf("%s may not use the node's admin socket %s: run the command as root (sudo), "+
		"or as a member of the node's admin group (admin_group in the config)", who, path)
}

// runReset is the factory reset: through the running node when there is
// one, else directly on the data directory.
func runReset(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("homenode reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	newID := fs.Bool("new-identity", false, "also make a new node identity (peer ID); the node must be stopped")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"reset takes no arguments"}
	}
	cfg, err := cf.load(fs)
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprint(stdout, "Factory reset: forget the owner, every registered user and every stored message,\n"+
			"and wait for pairing with a new QR code. Type 'reset' to confirm: ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "reset" {
			return errors.New("reset not confirmed; nothing changed")
		}
	}
	c, err := dialAdmin(ctx, cfg)
	if errors.Is(err, errNoAccess) {
		return err // a node may be running: never wipe its store from under it
	}
	if err == nil {
		defer c.Close()
		if *newID {
			return errors.New("--new-identity needs the node stopped (systemctl stop homenode), so that its identity is not in use")
		}
		if err := c.Reset(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "reset done; the node waits for pairing (see its status page or `homenode status`)")
		return nil
	}
	// No running node: wipe the store directly. Without a pairing record
	// the next start makes a new token and waits for pairing.
	db, err := store.Open(filepath.Join(cfg.DataDir, node.StoreFile), store.Options{})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	werr := db.Wipe()
	if err := db.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("reset: %w", werr)
	}
	if *newID {
		if err := os.Remove(filepath.Join(cfg.DataDir, p2p.IdentityFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reset: remove identity: %w", err)
		}
		fmt.Fprintln(stdout, "a new identity is made at the next start")
	}
	fmt.Fprintln(stdout, "reset done; the node waits for pairing at its next start")
	return nil
}
