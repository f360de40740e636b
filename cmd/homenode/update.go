package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/appliance"
	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
	"github.com/redpanda-p2p/homenode/internal/version"
	"github.com/redpanda-p2p/homenode/node"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/update"
)

const updateUsage = `usage: homenode update COMMAND [FLAGS]

Firmware updates of the A/B SD-card image (docs/UPDATES.md). On Debian or
Raspberry Pi OS, update the homenode package with apt instead.

commands:
  status           what is installed in each slot, the last update's outcome, progress
  apply FILE       check a bundle and install it into the other slot, then reboot
                   (--force-downgrade, --reinstall, --tries N, --no-reboot); as root
  commit           run by homenode-commit.service at every boot: commit the running
                   system once the node is healthy (--timeout)
  fallback         run by homenode-fallback.service when the commit step failed:
                   exit status 0 (reboot, to fall back) only on the trial boot of
                   a new system; otherwise 1 (stay up), the failure kept for status
  install-request  run by homenode-update.service: install what the node asked for
`

// updateValueFlags are the update command's own flags that take a value.
var updateValueFlags = map[string]bool{"tries": true, "timeout": true}

// splitUpdateCommand finds the update command wherever the flags put it,
// as splitCommand does for the top-level one: `homenode --data-dir DIR
// update commit` leaves the flags in front of "commit".
func splitUpdateCommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if (valueFlags[name] || updateValueFlags[name]) && !hasValue {
				i++ // skip the value
			}
			continue
		}
		return a, append(append([]string{}, args[:i]...), args[i+1:]...)
	}
	return "", args
}

func runUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args := splitUpdateCommand(args)
	if cmd == "" || cmd == "help" {
		fmt.Fprint(stdout, updateUsage)
		if cmd == "" && !slices.Contains(args, "-h") && !slices.Contains(args, "--help") {
			return usageError{"update needs a command"}
		}
		return nil
	}
	fs := flag.NewFlagSet("homenode update "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	var (
		asJSON    = fs.Bool("json", false, "print JSON (status)")
		downgrade = fs.Bool("force-downgrade", false, "install an older version than the running one (apply)")
		reinstall = fs.Bool("reinstall", false, "install the running version again (apply)")
		tries     = fs.Int("tries", update.DefaultTries, "boots the new system gets to become healthy (apply)")
		noReboot  = fs.Bool("no-reboot", false, "do not reboot after installing (apply)")
		timeout   = fs.Duration("timeout", update.DefaultCommitTimeout, "how long a new system may take to become healthy (commit)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := slog.New(sdnotify.NewLogHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := cf.load(fs)
	if err != nil {
		if cmd != "commit" && cmd != "fallback" {
			return err
		}
		// The commit step must not fail on a committed system because
		// of a configuration mistake. The defaults name the data
		// directory and socket.
		log.Error("update "+cmd+": configuration unreadable; using the defaults", "err", err)
		cfg = appliance.Defaults()
	}
	switch cmd {
	case "status":
		if fs.NArg() != 0 {
			return usageError{"update status takes no arguments"}
		}
		return updateStatus(cfg, *asJSON, stdout)
	case "apply":
		if fs.NArg() != 1 {
			return usageError{"update apply takes one bundle file"}
		}
		sys, err := detectSystem(cfg)
		if err != nil {
			return err
		}
		inst, err := sys.Install(fs.Arg(0), update.InstallOptions{AllowOlder: *downgrade, AllowSame: *reinstall,
			Tries: *tries, Source: "file", Logger: log, Progress: progressPrinter(stdout)})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installed %s in slot %s (%d bytes written); the next boot tries it\n", inst.Manifest.Version, inst.Slot, inst.Written)
		if *noReboot {
			fmt.Fprintln(stdout, "reboot to start it (systemctl reboot)")
			return nil
		}
		return reboot(sys, stdout)
	case "commit":
		return updateCommit(ctx, cfg, *timeout, log, stdout)
	case "fallback":
		return updateFallback(cfg, log, stdout)
	case "install-request":
		return installRequest(cfg, log, stdout)
	}
	fmt.Fprint(stderr, updateUsage)
	return usageError{fmt.Sprintf("unknown update command %q", cmd)}
}

func stateDir(cfg appliance.Config) update.Dir {
	return update.Dir(filepath.Join(cfg.DataDir, "update"))
}

func detectSystem(cfg appliance.Config) (*update.System, error) {
	return update.Detect(update.DetectOptions{Version: version.Version, StateDir: string(stateDir(cfg))})
}

func progressPrinter(w io.Writer) func(update.Progress) {
	last := ""
	return func(p update.Progress) {
		line := p.Phase
		if p.Total > 0 && p.Phase != update.PhaseInstalled {
			line = fmt.Sprintf("%s %d%%", p.Phase, p.Percent())
		}
		if line != last && (p.Percent()%10 == 0 || p.Phase != last) {
			fmt.Fprintln(w, line)
		}
		last = line
	}
}

// reboot marks the reboot in the progress and asks systemd for it.
func reboot(sys *update.System, stdout io.Writer) error {
	if p, ok, _ := sys.State.ReadProgress(); ok {
		p.Phase = update.PhaseRebooting
		_ = sys.State.WriteProgress(p)
	}
	fmt.Fprintln(stdout, "rebooting")
	if out, err := exec.Command("systemctl", "reboot").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl reboot: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nodeHealthy asks the running node, as a user of the box would: over its
// admin socket (ready, store answering, host listening, the version this
// slot holds) and with a TCP connection to its libp2p port.
func nodeHealthy(cfg appliance.Config) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := dialAdmin(ctx, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		h, err := c.Health(ctx)
		switch {
		case err != nil:
			return err
		case !h.Ready:
			return errors.New("homenode is starting")
		case h.Store != "ok":
			return fmt.Errorf("store: %s", h.Store)
		case h.Version != version.Version:
			return fmt.Errorf("the running homenode is %s, this system's is %s", h.Version, version.Version)
		}
		for _, s := range h.Listen {
			ma, err := multiaddr.NewMultiaddr(s)
			if err != nil {
				continue
			}
			port, err := ma.ValueForProtocol(multiaddr.P_TCP)
			if err != nil {
				continue
			}
			host := "127.0.0.1"
			if _, err := ma.ValueForProtocol(multiaddr.P_IP6); err == nil {
				host = "::1"
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
			if err != nil {
				return fmt.Errorf("the node's port %s: %w", port, err)
			}
			conn.Close()
			return nil
		}
		return fmt.Errorf("the node listens on no TCP port (%v)", h.Listen)
	}
}

// updateCommit fails when the running system could not be committed.
// homenode-commit.service then starts homenode-fallback.service, which
// reboots the board only if this is the trial boot of a new system
// (updateFallback); on any other boot the failure is logged, kept in
// state.json for the status page and `homenode status`, and the board stays
// up: rebooting a freshly flashed card or a committed system would not
// bring back anything better, and could loop for ever.
func updateCommit(ctx context.Context, cfg appliance.Config, timeout time.Duration, log *slog.Logger, stdout io.Writer) error {
	return commitWith(ctx, cfg, runningSystem(cfg), timeout, log, stdout)
}

// commitEnv is what the commit step reads of the box: the kernel command
// line, the A/B layout and the node's health. runningSystem gives the
// box's own; tests give a card of files and a node they control.
type commitEnv struct {
	cmdline string                         // the kernel command line (/proc/cmdline)
	detect  func() (*update.System, error) // the slots and the boot state
	healthy func(context.Context) error    // the node, as a user of the box asks it
	poll    time.Duration                  // how often the node is asked; 2 s when 0
}

func runningSystem(cfg appliance.Config) commitEnv {
	return commitEnv{cmdline: "/proc/cmdline", detect: func() (*update.System, error) { return detectSystem(cfg) },
		healthy: nodeHealthy(cfg)}
}

func commitWith(ctx context.Context, cfg appliance.Config, env commitEnv, timeout time.Duration, log *slog.Logger, stdout io.Writer) (err error) {
	poll := env.poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	trial := update.TrialBoot(env.cmdline, stateDir(cfg))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update commit: %v", p)
		}
		if err != nil && !trial {
			log.Error("update commit failed on a boot that is not a trial: staying up", "err", err)
			if rerr := stateDir(cfg).RecordCommitFailure(err.Error()); rerr != nil {
				log.Warn("update commit: cannot record the failure", "err", rerr)
			}
		}
	}()
	sys, err := env.detect()
	if errors.Is(err, update.ErrNotAB) {
		fmt.Fprintln(stdout, "not an A/B system: nothing to commit")
		return nil
	}
	if err != nil {
		return fmt.Errorf("update commit: cannot read the system's layout: %w", err)
	}
	boot, _, _ := sys.LoadBoot()
	trial = trial || boot.Trial == sys.Current
	storePath := filepath.Join(cfg.DataDir, node.StoreFile)
	out, res, err := sys.Commit(ctx, update.CommitOptions{
		Healthy: env.healthy,
		Timeout: timeout,
		Poll:    poll,
		Logger:  log,
		// Committed: the previous version will not run on this store
		// again, so what a rollback needed can go, once the node has
		// been healthy on this boot (the unit is not ordered after
		// homenode.service: after a rollback the old node must have
		// taken its store back from the copy first).
		OnCommit: func() error {
			if err := update.WaitHealthy(ctx, env.healthy, timeout, poll); err != nil {
				return fmt.Errorf("the store's rollback copy is kept: the node was not healthy: %w", err)
			}
			return store.DropRollback(storePath)
		},
	})
	if err != nil {
		// The unit fails; on a trial homenode-fallback.service
		// reboots the board and the boot script falls back.
		return fmt.Errorf("update: %s not committed: %w", sys.Version, err)
	}
	if res != nil {
		fmt.Fprintln(stdout, res.Message())
	} else {
		fmt.Fprintf(stdout, "%s: slot %s, %s\n", out, sys.Current, sys.Version)
	}
	return nil
}

// errStayUp is updateFallback's answer on a boot that is not a trial: exit
// status 1, which homenode-fallback.service's ExecCondition= takes as
// "skip the reboot".
var errStayUp = errors.New("not rebooting")

// updateFallback runs after the commit step failed, however it failed (an
// unhealthy node, a crash, a timeout, a unit that could not start). It
// returns nil, and the unit reboots the board, only on the trial boot of a
// new system (update.DecideFallback); otherwise it keeps the failure for
// the owner and returns errStayUp.
func updateFallback(cfg appliance.Config, log *slog.Logger, stdout io.Writer) error {
	sys, err := detectSystem(cfg)
	if err != nil {
		log.Error("update fallback: not an A/B system, or its layout is unreadable: staying up", "err", err)
		return fmt.Errorf("%w: %v", errStayUp, err)
	}
	f := sys.Fallback()
	if f.Reboot {
		log.Warn("update fallback: " + f.Why)
		fmt.Fprintln(stdout, f.Why)
		return nil
	}
	log.Error("update fallback: the commit step failed; staying up", "why", f.Why)
	// The commit step keeps its own error when it could; a crash, a
	// timeout or a unit that did not start leaves only systemd's word.
	rec, _ := sys.State.ReadRecord()
	if c := rec.CommitFailed; c == nil || c.At.Before(bootTime()) {
		msg := "homenode-commit.service failed"
		if r := os.Getenv("MONITOR_SERVICE_RESULT"); r != "" {
			msg += fmt.Sprintf(" (%s, %s %s)", r, os.Getenv("MONITOR_EXIT_CODE"), os.Getenv("MONITOR_EXIT_STATUS"))
		}
		if err := sys.State.RecordCommitFailure(msg + ": see journalctl -u homenode-commit"); err != nil {
			log.Warn("update fallback: cannot record the failure", "err", err)
		}
	}
	return fmt.Errorf("%w: %s", errStayUp, f.Why)
}

// bootTime is when this boot began (from /proc/uptime); the zero time if
// unknown.
func bootTime() time.Time {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return time.Time{}
	}
	up, err := time.ParseDuration(f[0] + "s")
	if err != nil {
		return time.Time{}
	}
	return time.Now().Add(-up)
}

func installRequest(cfg appliance.Config, log *slog.Logger, stdout io.Writer) error {
	sys, err := detectSystem(cfg)
	if err != nil {
		return err
	}
	req, ok, err := sys.State.TakeRequest()
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(stdout, "no installation requested")
		return nil
	}
	path, err := sys.State.SpoolFile(req.Bundle)
	if err != nil {
		return err
	}
	// The bundle leaves the spool whatever happens: installed, it is in
	// the slot; refused, it is no use.
	defer os.Remove(path)
	inst, err := sys.Install(path, update.InstallOptions{AllowOlder: req.AllowOlder, AllowSame: req.AllowSame,
		Tries: req.Tries, Source: req.Source, Logger: log})
	if err != nil {
		return err
	}
	p, _, _ := sys.State.ReadProgress()
	p.Phase = update.PhaseRebooting
	_ = sys.State.WriteProgress(p)
	fmt.Fprintf(stdout, "installed %s in slot %s; rebooting into it\n", inst.Manifest.Version, inst.Slot)
	return nil
}

// statusView is `homenode update status --json`.
type statusView struct {
	Slot     update.Slot      `json:"slot,omitempty"`
	Version  string           `json:"version"`
	Record   update.Record    `json:"record"`
	Progress *update.Progress `json:"progress,omitempty"`
	Boot     *update.Boot     `json:"boot,omitempty"`
	Keys     []string         `json:"keys,omitempty"`
	Note     string           `json:"note,omitempty"`
}

func updateStatus(cfg appliance.Config, asJSON bool, stdout io.Writer) error {
	v := statusView{Version: version.Version}
	dir := stateDir(cfg)
	sys, err := detectSystem(cfg)
	switch {
	case errors.Is(err, update.ErrNotAB):
		v.Note = "not an A/B system: update the homenode package with apt"
	case err != nil:
		return err
	default:
		v.Slot = sys.Current
		dir = sys.State
		for _, id := range sys.Keyring.IDs() {
			v.Keys = append(v.Keys, fmt.Sprintf("%s (%s)", id, sys.Keyring.Name(id)))
		}
		if b, _, err := sys.LoadBoot(); err == nil {
			v.Boot = &b
		} else {
			v.Note = fmt.Sprintf("boot state not readable here (%v)", err)
		}
	}
	if v.Record, err = dir.ReadRecord(); err != nil {
		return err
	}
	if p, ok, _ := dir.ReadProgress(); ok {
		v.Progress = &p
	}
	if asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "running:   %s", v.Version)
	if v.Slot != "" {
		fmt.Fprintf(stdout, " (slot %s)", v.Slot)
	}
	fmt.Fprintln(stdout)
	for _, s := range []update.Slot{update.SlotA, update.SlotB} {
		if ver := v.Record.Slots[s]; ver != "" {
			fmt.Fprintf(stdout, "slot %s:    %s\n", s, ver)
		}
	}
	if t := v.Record.Trial; t != nil {
		fmt.Fprintf(stdout, "on trial:  %s in slot %s (from %s, %d boot(s) to become healthy)\n", t.Version, t.Slot, t.From, t.Tries)
	}
	if l := v.Record.Last; l != nil {
		fmt.Fprintf(stdout, "last:      %s (%s)\n", l.Message(), l.At.Local().Format(time.DateTime))
	}
	if c := v.Record.CommitFailed; c != nil {
		fmt.Fprintf(stdout, "commit:    FAILED at boot (%s), running on: %s\n", c.At.Local().Format(time.DateTime), c.Error)
	}
	if p := v.Progress; p != nil {
		fmt.Fprintf(stdout, "progress:  %s %s %d%%", p.Phase, p.Version, p.Percent())
		if p.Error != "" {
			fmt.Fprintf(stdout, ": %s", p.Error)
		}
		fmt.Fprintln(stdout)
	}
	if v.Boot != nil {
		fmt.Fprintf(stdout, "boot:      %s\n", v.Boot)
	}
	if len(v.Keys) > 0 {
		fmt.Fprintf(stdout, "keys:      %s\n", strings.Join(v.Keys, ", "))
	}
	if v.Note != "" {
		fmt.Fprintf(stdout, "note:      %s\n", v.Note)
	}
	return nil
}
