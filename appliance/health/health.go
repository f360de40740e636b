package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/board"
)

// Sentinel errors that callers branch on.
var (
	// ErrWedged means a previous or the current read of /proc or the data
	// directory did not finish before the deadline; figures are missing.
	ErrWedged = errors.New("health: a system read did not finish")
)

// Defaults for Config's low-disk thresholds.
const (
	DefaultLowDiskPercent = 5.0
	DefaultLowDiskBytes   = 200 << 20
)

// Config says where to look and when to warn. The zero value of each field
// means its default.
type Config struct {
	ProcRoot string // procfs mount point; "/proc"
	PID      int    // process to report on; this process
	DataDir  string // the directory whose file system is watched; required
	// Board, when non-nil, adds temperature and throttling figures.
	Board *board.Info
	// Low disk: warn below LowDiskPercent of the file system free or
	// below LowDiskBytes free, whichever comes first. Negative disables.
	LowDiskPercent float64
	LowDiskBytes   int64
	// Clock decides whether the system clock is trusted; DefaultClock
	// when nil.
	Clock *Clock
}

// Process is what this process uses.
type Process struct {
	RSSBytes   uint64
	OpenFiles  int
	MaxFiles   uint64 // the soft RLIMIT_NOFILE
	CPUSeconds float64
}

// Load is the system load average.
type Load struct{ One, Five, Fifteen float64 }

// Memory is the system's memory in bytes.
type Memory struct{ TotalBytes, AvailableBytes uint64 }

// Disk is the file system that holds the data directory.
type Disk struct {
	Path       string
	TotalBytes uint64
	FreeBytes  uint64 // available to this (unprivileged) process
}

// FreePercent is the share of the file system still available.
func (d Disk) FreePercent() float64 {
	if d.TotalBytes == 0 {
		return 0
	}
	return 100 * float64(d.FreeBytes) / float64(d.TotalBytes)
}

// Interface is one network interface's cumulative byte counters.
type Interface struct {
	Name             string
	RxBytes, TxBytes uint64
}

// Board is the live hardware reading; a sensor the machine lacks leaves
// its Known flag false.
type Board struct {
	Model         string
	Celsius       float64
	TempKnown     bool
	Throttle      board.Throttle
	ThrottleKnown bool
}

// Warning is something the owner should act on.
type Warning struct {
	Code    string // stable: "low-disk", "overheating", "under-voltage", "under-voltage-since-boot", "clock-unsynced"
	Message string // a plain sentence for the status page
}

// Snapshot is one sample of every figure.
type Snapshot struct {
	Time     time.Time
	Process  Process
	Load     Load
	Memory   Memory
	Disk     Disk
	Network  []Interface // sorted by name
	Board    Board
	Clock    ClockState
	Warnings []Warning
}

// Collector takes snapshots. It is safe for concurrent use.
type Collector struct {
	cfg Config
	fs  procfs.FS

	mu      sync.Mutex
	running bool // a collection is in flight (possibly wedged)
}

// New checks cfg and opens the procfs mount.
func New(cfg Config) (*Collector, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("health.New: DataDir is required")
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = procfs.DefaultMountPoint
	}
	if cfg.PID == 0 {
		cfg.PID = os.Getpid()
	}
	if cfg.LowDiskPercent == 0 {
		cfg.LowDiskPercent = DefaultLowDiskPercent
	}
	if cfg.LowDiskBytes == 0 {
		cfg.LowDiskBytes = DefaultLowDiskBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = &DefaultClock
	}
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("health.New: %w", err)
	}
	return &Collector{cfg: cfg, fs: fs}, nil
}

// Snapshot samples everything. Reads run in their own goroutine so a hung
// file system cannot hang the caller: if ctx ends first, Snapshot returns
// ErrWedged, and so does every later call until that read comes back.
// Any figure that cannot be read makes the error non-nil (all failures
// joined); the figures that were read are still returned.
func (c *Collector) Snapshot(ctx context.Context) (Snapshot, error) {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return Snapshot{}, fmt.Errorf("health.Snapshot: %w (still waiting for an earlier read)", ErrWedged)
	}
	c.running = true
	c.mu.Unlock()

	type result struct {
		s   Snapshot
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.collect()
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		return Snapshot{}, fmt.Errorf("health.Snapshot: %w: %w", ErrWedged, ctx.Err())
	}
}

func (c *Collector) collect() (Snapshot, error) {
	s := Snapshot{Time: time.Now()}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}

	if p, err := c.fs.Proc(c.cfg.PID); err != nil {
		fail("process", err)
	} else {
		if st, err := p.Stat(); err != nil {
			fail("process stat", err)
		} else {
			s.Process.RSSBytes = uint64(st.ResidentMemory())
			s.Process.CPUSeconds = st.CPUTime()
		}
		if n, err := p.FileDescriptorsLen(); err != nil {
			fail("open files", err)
		} else {
			s.Process.OpenFiles = n
		}
		if l, err := p.Limits(); err != nil {
			fail("limits", err)
		} else {
			s.Process.MaxFiles = l.OpenFiles
		}
	}
	if l, err := c.fs.LoadAvg(); err != nil {
		fail("load", err)
	} else {
		s.Load = Load{l.Load1, l.Load5, l.Load15}
	}
	if m, err := c.fs.Meminfo(); err != nil {
		fail("memory", err)
	} else if m.MemTotalBytes == nil || m.MemAvailableBytes == nil {
		fail("memory", errors.New("meminfo lacks MemTotal or MemAvailable"))
	} else {
		s.Memory = Memory{*m.MemTotalBytes, *m.MemAvailableBytes}
	}
	if nd, err := c.fs.NetDev(); err != nil {
		fail("network", err)
	} else {
		for name, l := range nd {
			s.Network = append(s.Network, Interface{name, l.RxBytes, l.TxBytes})
		}
		slices.SortFunc(s.Network, func(a, b Interface) int {
			if a.Name < b.Name {
				return -1
			}
			return 1
		})
	}
	if d, err := DiskUsage(c.cfg.DataDir); err != nil {
		fail("disk", err)
	} else {
		s.Disk = d
	}
	if b := c.cfg.Board; b != nil {
		s.Board.Model = b.Model
		r := b.Read()
		// A sensor the machine lacks is normal; a broken one is an error.
		if r.TempErr == nil {
			s.Board.Celsius, s.Board.TempKnown = r.Celsius, true
		} else if !errors.Is(r.TempErr, board.ErrNotSupported) {
			fail("temperature", r.TempErr)
		}
		if r.ThrottleErr == nil {
			s.Board.Throttle, s.Board.ThrottleKnown = r.Throttle, true
		} else if !errors.Is(r.ThrottleErr, board.ErrNotSupported) {
			fail("throttling", r.ThrottleErr)
		}
		for _, w := range r.Warnings() {
			s.Warnings = append(s.Warnings, Warning(w))
		}
	}
	s.Clock = c.cfg.Clock.State()
	if !s.Clock.Synced {
		s.Warnings = append(s.Warnings, Warning{"clock-unsynced", ClockUnsyncedMessage})
	}
	if s.Disk.TotalBytes > 0 && LowDisk(s.Disk, c.cfg.LowDiskPercent, c.cfg.LowDiskBytes) {
		s.Warnings = append(s.Warnings, Warning{"low-disk", fmt.Sprintf(
			"Only %s (%.1f %%) of storage is free: when it runs out the node refuses new messages (the stored ones stay until they expire); free some space or use a larger SD card.",
			formatBytes(s.Disk.FreeBytes), s.Disk.FreePercent())})
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("health.Snapshot: %w", errors.Join(errs...))
	}
	return s, nil
}

// LowDisk reports whether d is below either threshold; a negative
// threshold is disabled.
func LowDisk(d Disk, minPercent float64, minBytes int64) bool {
	return (minPercent >= 0 && d.FreePercent() < minPercent) ||
		(minBytes >= 0 && d.FreeBytes < uint64(minBytes))
}

// DiskUsage measures the file system holding path with statfs(2).
func DiskUsage(path string) (Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Disk{}, fmt.Errorf("health.DiskUsage: statfs %s: %w", path, err)
	}
	// Block counts are in fragment-size units; old kernels leave Frsize 0.
	bs := uint64(st.Frsize) //nolint:gosec // sizes are positive
	if bs == 0 {
		bs = uint64(st.Bsize) //nolint:gosec
	}
	return Disk{Path: path, TotalBytes: st.Blocks * bs, FreeBytes: st.Bavail * bs}, nil
}

func formatBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}
