package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/board"
)

// syncedClock keeps the clock warning out of tests about other figures.
var syncedClock = &Clock{Root: "/nonexistent", Kernel: func() (bool, error) { return true, nil }}

func newCollector(t *testing.T, cfg Config) *Collector {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Clock == nil {
		cfg.Clock = syncedClock
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func snap(t *testing.T, c *Collector) Snapshot {
	t.Helper()
	s, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func warningCodes(s Snapshot) []string {
	var out []string
	for _, w := range s.Warnings {
		out = append(out, w.Code)
	}
	return out
}

// Against this test process's real /proc: every figure is present and the
// process figures follow what the test does.
func TestSnapshotRealProcfs(t *testing.T) {
	c := newCollector(t, Config{})
	s := snap(t, c)
	if s.Process.RSSBytes == 0 || s.Process.OpenFiles == 0 || s.Process.MaxFiles == 0 {
		t.Errorf("process figures missing: %+v", s.Process)
	}
	if s.Memory.TotalBytes == 0 || s.Memory.AvailableBytes == 0 || s.Memory.AvailableBytes > s.Memory.TotalBytes {
		t.Errorf("memory: %+v", s.Memory)
	}
	if s.Disk.TotalBytes == 0 {
		t.Errorf("disk: %+v", s.Disk)
	}
	if !slices.ContainsFunc(s.Network, func(i Interface) bool { return i.Name == "lo" }) {
		t.Errorf("no loopback in %+v", s.Network)
	}
	if !slices.IsSortedFunc(s.Network, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("interfaces not sorted: %+v", s.Network)
	}
	if len(s.Warnings) != 0 {
		t.Logf("warnings on this machine: %v", warningCodes(s))
	}
}

func TestRSSGrowsAfterAllocating(t *testing.T) {
	c := newCollector(t, Config{})
	before := snap(t, c).Process.RSSBytes
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // touch every page so it is resident
	}
	after := snap(t, c).Process.RSSBytes
	runtime.KeepAlive(buf)
	if after < before+size/2 {
		t.Fatalf("RSS %d -> %d after touching %d bytes", before, after, size)
	}
}

func TestOpenFilesFollowFiles(t *testing.T) {
	c := newCollector(t, Config{})
	before := snap(t, c).Process.OpenFiles
	for i := range 20 {
		f, err := os.Create(filepath.Join(t.TempDir(), strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if after := snap(t, c).Process.OpenFiles; after < before+20 {
		t.Fatalf("open files %d -> %d after opening 20", before, after)
	}
}

// CPU seconds rise with work; the loop stops as soon as they do (the kernel
// counts in 10 ms ticks), so the test measures no speed.
func TestCPUSecondsGrow(t *testing.T) {
	c := newCollector(t, Config{})
	before := snap(t, c).Process.CPUSeconds
	x := uint64(1)
	for range 1000 {
		for range 2_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if snap(t, c).Process.CPUSeconds > before {
			return
		}
	}
	t.Fatalf("CPU seconds stayed at %v after a long busy loop (%d)", before, x)
}

// statfs of a temp dir agrees with df, an independent program.
func TestDiskUsageMatchesDf(t *testing.T) {
	dir := t.TempDir()
	d, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("df", "-B1", "--output=size,avail", dir).Output()
	if err != nil {
		t.Skipf("df: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 {
		t.Fatalf("df output %q", out)
	}
	size, _ := strconv.ParseUint(f[2], 10, 64)
	avail, _ := strconv.ParseUint(f[3], 10, 64)
	if d.TotalBytes != size {
		t.Errorf("total %d, df says %d", d.TotalBytes, size)
	}
	// Other processes write meanwhile; allow them 256 MiB.
	if diff := int64(d.FreeBytes) - int64(avail); diff > 256<<20 || diff < -256<<20 {
		t.Errorf("free %d, df says %d", d.FreeBytes, avail)
	}
	if _, err := DiskUsage(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestLowDisk(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name    string
		d       Disk
		pct     float64
		min     int64
		wantLow bool
	}{
		{"plenty", Disk{TotalBytes: 32 * gib, FreeBytes: 16 * gib}, 5, 200 << 20, false},
		{"under 5 percent", Disk{TotalBytes: 100 * gib, FreeBytes: 4 * gib}, 5, 200 << 20, true},
		{"under 200 MiB on a small card", Disk{TotalBytes: 2 * gib, FreeBytes: 150 << 20}, 5, 200 << 20, true},
		{"exactly at 5 percent", Disk{TotalBytes: 100 * gib, FreeBytes: 5 * gib}, 5, 200 << 20, false},
		{"percent disabled", Disk{TotalBytes: 100 * gib, FreeBytes: 1 * gib}, -1, 200 << 20, false},
		{"both disabled", Disk{TotalBytes: 100 * gib, FreeBytes: 0}, -1, -1, false},
	}
	for _, tt := range tests {
		if got := LowDisk(tt.d, tt.pct, tt.min); got != tt.wantLow {
			t.Errorf("%s: LowDisk = %v", tt.name, got)
		}
	}
}

// The low-disk warning through a real snapshot: thresholds above what the
// temp dir's file system has free must warn; disabled ones must not.
func TestLowDiskWarning(t *testing.T) {
	dir := t.TempDir()
	d, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	low := newCollector(t, Config{DataDir: dir, LowDiskBytes: int64(d.FreeBytes) + 1<<40})
	s := snap(t, low)
	if !slices.Contains(warningCodes(s), "low-disk") {
		t.Fatalf("no low-disk warning: %v", s.Warnings)
	}
	for _, w := range s.Warnings {
		if w.Code == "low-disk" && !strings.Contains(w.Message, "free") {
			t.Errorf("message %q", w.Message)
		}
	}
	off := newCollector(t, Config{DataDir: dir, LowDiskBytes: -1, LowDiskPercent: -1})
	if codes := warningCodes(snap(t, off)); slices.Contains(codes, "low-disk") {
		t.Fatalf("disabled thresholds warned: %v", codes)
	}
}

// fakeProc builds a procfs tree for pid 4242 from files; "FIFO" as content
// makes a named pipe, whose read blocks like a wedged file system.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"4242/fd", "net"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range files {
		full := filepath.Join(root, p)
		if s == "FIFO" {
			if err := syscall.Mkfifo(full, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// goodProc is a minimal, valid procfs tree; tests break one file at a time.
func goodProc() map[string]string {
	return map[string]string{
		"4242/stat":   "4242 (homenode) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 8 0 100 900000000 6000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		"4242/limits": "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n",
		"loadavg":     "0.52 0.58 0.59 1/283 4242\n",
		"meminfo":     "MemTotal:        3882988 kB\nMemFree:         1742228 kB\nMemAvailable:    3412232 kB\n",
		"net/dev": "Inter-|   Receive                                                |  Transmit\n" +
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
			"    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n" +
			"  eth0: 5000000    4000    0    0    0     0          0        12   700000    3000    0    0    0     0       0          0\n",
	}
}

func TestFakeProcFigures(t *testing.T) {
	c := newCollector(t, Config{ProcRoot: fakeProc(t, goodProc()), PID: 4242})
	s := snap(t, c)
	want := Process{RSSBytes: 6000 * uint64(os.Getpagesize()), OpenFiles: 0, MaxFiles: 1024, CPUSeconds: 2}
	if s.Process != want {
		t.Errorf("process %+v, want %+v", s.Process, want)
	}
	if s.Load != (Load{0.52, 0.58, 0.59}) || s.Memory != (Memory{3882988 << 10, 3412232 << 10}) {
		t.Errorf("load %+v memory %+v", s.Load, s.Memory)
	}
	wantNet := []Interface{{"eth0", 5000000, 700000}, {"lo", 1000, 1000}}
	if !slices.Equal(s.Network, wantNet) {
		t.Errorf("network %+v", s.Network)
	}
}

// A failed read is an error naming what failed, never a quiet zero.
func TestFailedReadsSurface(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string // "" deletes the file
		want   string
		is     error
	}{
		{"garbage stat", map[string]string{"4242/stat": "not a stat line\n"}, "process stat", nil},
		{"missing loadavg", map[string]string{"loadavg": ""}, "load", fs.ErrNotExist},
		{"garbage loadavg", map[string]string{"loadavg": "x y z\n"}, "load", nil},
		{"meminfo without MemAvailable", map[string]string{"meminfo": "MemTotal: 100 kB\n"}, "memory", nil},
		{"missing net/dev", map[string]string{"net/dev": ""}, "network", fs.ErrNotExist},
		{"missing limits", map[string]string{"4242/limits": ""}, "limits", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := goodProc()
			for p, s := range tt.change {
				if s == "" {
					delete(files, p)
				} else {
					files[p] = s
				}
			}
			c := newCollector(t, Config{ProcRoot: fakeProc(t, files), PID: 4242})
			_, err := c.Snapshot(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want+":") {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
	c := newCollector(t, Config{ProcRoot: fakeProc(t, goodProc()), PID: 9999})
	if _, err := c.Snapshot(context.Background()); err == nil || !strings.Contains(err.Error(), "process:") {
		t.Fatalf("vanished process: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without DataDir: no error")
	}
}

// A wedged read (here a named pipe nobody writes) gives ErrWedged at the
// deadline, keeps giving it while that read is stuck, and recovers once the
// read returns.
func TestWedgedReadSurfaces(t *testing.T) {
	files := goodProc()
	files["loadavg"] = "FIFO"
	root := fakeProc(t, files)
	c := newCollector(t, Config{ProcRoot: root, PID: 4242})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Snapshot(ctx); !errors.Is(err, ErrWedged) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first snapshot: %v", err)
	}
	if _, err := c.Snapshot(context.Background()); !errors.Is(err, ErrWedged) {
		t.Fatalf("while wedged: %v", err)
	}

	// Unwedge: a writer supplies a valid line and closes; then a regular
	// file replaces the pipe so later reads do not block again.
	fifo := filepath.Join(root, "loadavg")
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "0.10 0.20 0.30 1/100 4242\n")
	w.Close()
	if err := os.WriteFile(fifo+".new", []byte("0.40 0.50 0.60 1/100 4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo+".new", fifo); err != nil {
		t.Fatal(err)
	}
	// The stuck goroutine now finishes; wait for it, not for a time.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := c.Snapshot(ctx)
		cancel()
		if err == nil {
			if s.Load != (Load{0.4, 0.5, 0.6}) {
				t.Fatalf("after recovery load = %+v", s.Load)
			}
			return
		}
		if !errors.Is(err, ErrWedged) || i > 500 {
			t.Fatalf("collector did not recover: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBoardInSnapshot(t *testing.T) {
	tests := []struct {
		fixture       string
		tempKnown     bool
		throttleKnown bool
		warnings      []string
	}{
		{"pi3b", true, true, []string{"overheating", "under-voltage"}},
		{"pi4b", true, true, nil},
		{"x86pc", true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			b, err := board.Detect(filepath.Join("../../board/testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			s := snap(t, newCollector(t, Config{Board: b, LowDiskBytes: -1, LowDiskPercent: -1}))
			if s.Board.TempKnown != tt.tempKnown || s.Board.ThrottleKnown != tt.throttleKnown || s.Board.Model != b.Model {
				t.Errorf("board %+v", s.Board)
			}
			if got := warningCodes(s); !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings %v, want %v", got, tt.warnings)
			}
		})
	}
	// A broken sensor (garbage) is an error; a missing one is not.
	dir := t.TempDir()
	zone := filepath.Join(dir, "sys/class/thermal/thermal_zone0")
	if err := os.MkdirAll(zone, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(zone, "temp"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := board.Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newCollector(t, Config{Board: b}).Snapshot(context.Background())
	if !errors.Is(err, board.ErrMalformed) {
		t.Fatalf("garbage temperature: %v", err)
	}
}

// BenchmarkSnapshot is the cost of one full sample (what a status-page load
// or a metrics scrape pays), against this process's real /proc.
func BenchmarkSnapshot(b *testing.B) {
	bd, err := board.Detect("../../board/testdata/pi4b")
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{DataDir: b.TempDir(), Board: bd})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
