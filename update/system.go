// Package update installs signed bundles (package bundle) into the
// inactive root slot of the home node's A/B SD-card image, switches to it
// for one trial boot, and commits the new system only once it is healthy;
// a trial that is not committed leaves the boot script (image/boot.cmd)
// to bring the old slot back by itself. It keeps the boot state through
// package bootenv and its own records (state.json, progress.json) in a
// directory on the data partition, which the daemon reads to tell the
// owner.
//
// It knows the disk layout (slots A and B are partitions 2 and 3 of the
// boot disk, the boot state is in the gap before partition 1), the boot
// variables the script reads, and the bundle format. It must not know
// libp2p, the owner protocol, the message store's format, systemd or the
// appliance: health is a function it is given.
package update

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/update/bootenv"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

// Where the image keeps what the updater reads (image/build.sh writes
// them into every slot).
const (
	DefaultKeyring    = "/usr/share/homenode/update/keys"
	DefaultCompatible = "/usr/share/homenode/update/compatible"
	// DefaultStateDir is on the data partition, with the node's identity.
	DefaultStateDir = "/var/lib/homenode/update"
	// cmdlineSlot is the kernel parameter the boot script sets.
	cmdlineSlot = "homenode.slot="
)

// Sentinel errors.
var (
	// ErrNotAB: this system was not booted by the A/B boot script (a
	// Debian or Raspberry Pi OS install: update it with apt).
	ErrNotAB = errors.New("update: not an A/B system (no homenode.slot= on the kernel command line); " +
		"on Debian or Raspberry Pi OS, update with apt")
	// ErrTooLarge: the image does not fit the slot partition.
	ErrTooLarge = errors.New("update: image larger than the slot")
	// ErrBusy: an installation is already running.
	ErrBusy = errors.New("update: an installation is already running")
	// ErrNotHealthy: the trial system did not become healthy in time.
	ErrNotHealthy = errors.New("update: the new system did not become healthy in time")
)

// System is an A/B system: where its slots and boot state are, what runs.
type System struct {
	Current    Slot
	Slots      map[Slot]string // slot -> partition device (or file, in tests)
	Boot       *bootenv.Store  // the boot state on the boot disk
	Compatible string          // this board, as bundles name it
	Version    string          // the running version
	Keyring    *bundle.Keyring
	State      Dir
}

// DetectOptions say where to look; zero fields take the running system's.
type DetectOptions struct {
	Root       string // the root file system; default /
	Cmdline    string // default /proc/cmdline
	SysRoot    string // default /sys
	DevRoot    string // default /dev
	Keyring    string // default DefaultKeyring
	Compatible string // file; default DefaultCompatible
	StateDir   string // default DefaultStateDir
	Version    string // the running version; required
}

// Detect finds the running slot from the kernel command line, checks that
// the root file system really is that slot's partition, and derives the
// other slot and the boot disk from it.
func Detect(o DetectOptions) (*System, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Cmdline == "" {
		o.Cmdline = "/proc/cmdline"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.Keyring == "" {
		o.Keyring = DefaultKeyring
	}
	if o.Compatible == "" {
		o.Compatible = DefaultCompatible
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	cmd, err := os.ReadFile(o.Cmdline)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	var cur Slot
	for _, f := range strings.Fields(string(cmd)) {
		if v, ok := strings.CutPrefix(f, cmdlineSlot); ok {
			if cur, err = parseSlot(v); err != nil {
				return nil, err
			}
		}
	}
	if cur == "" {
		return nil, ErrNotAB
	}
	disk, part, err := rootPartition(o.Root, o.SysRoot)
	if err != nil {
		return nil, err
	}
	if part != cur.Partition() {
		return nil, fmt.Errorf("update: the kernel says slot %s but / is on partition %d of %s", cur, part, disk)
	}
	slots := map[Slot]string{}
	for _, s := range []Slot{SlotA, SlotB} {
		name, err := partitionName(o.SysRoot, disk, s.Partition())
		if err != nil {
			return nil, err
		}
		slots[s] = filepath.Join(o.DevRoot, name)
	}
	compat, err := os.ReadFile(o.Compatible)
	if err != nil {
		return nil, fmt.Errorf("update: this image names no board: %w", err)
	}
	kr, err := bundle.LoadKeyring(o.Keyring)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	return &System{
		Current:    cur,
		Slots:      slots,
		Boot:       bootenv.Default(filepath.Join(o.DevRoot, disk)),
		Compatible: strings.TrimSpace(string(compat)),
		Version:    o.Version,
		Keyring:    kr,
		State:      Dir(o.StateDir),
	}, nil
}

// rootPartition finds the disk and partition number that hold root.
func rootPartition(root, sysRoot string) (disk string, part int, err error) {
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return "", 0, fmt.Errorf("update: stat %s: %w", root, err)
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	link := filepath.Join(sysRoot, "dev/block", fmt.Sprintf("%d:%d", major, minor))
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", 0, fmt.Errorf("update: the root device %d:%d: %w", major, minor, err)
	}
	b, err := os.ReadFile(filepath.Join(target, "partition"))
	if err != nil {
		return "", 0, fmt.Errorf("update: / is not on a partition (%s): %w", target, err)
	}
	if part, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return "", 0, fmt.Errorf("update: %s/partition: %w", target, err)
	}
	return filepath.Base(filepath.Dir(target)), part, nil
}

// partitionName finds the name of partition n of disk (vda3, mmcblk0p3).
func partitionName(sysRoot, disk string, n int) (string, error) {
	ents, err := os.ReadDir(filepath.Join(sysRoot, "block", disk))
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), disk) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysRoot, "block", disk, e.Name(), "partition"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("update: %w", err)
		}
		if strings.TrimSpace(string(b)) == strconv.Itoa(n) {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("update: %s has no partition %d: not the A/B layout", disk, n)
}

// LoadBoot reads the boot state; with no valid copy it returns the
// script's defaults and the error.
func (s *System) LoadBoot() (Boot, bootenv.State, error) {
	st, err := s.Boot.Load()
	if err != nil {
		return DefaultBoot(), st, err
	}
	b, err := ParseBoot(st.Env)
	return b, st, err
}

func (s *System) saveBoot(prev bootenv.State, b Boot) (bootenv.State, error) {
	env := prev.Env.Clone()
	if env == nil {
		env = bootenv.Env{}
	}
	delete(env, varTrial)
	for k, v := range b.Env() {
		env[k] = v
	}
	return s.Boot.Save(prev, env)
}
