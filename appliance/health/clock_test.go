package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClockState(t *testing.T) {
	synced := t.TempDir()
	flag := filepath.Join(synced, TimesyncdFlag)
	if err := os.MkdirAll(filepath.Dir(flag), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unsynced := t.TempDir() // no flag: a Pi just booted
	kernelErr := errors.New("adjtimex: operation not permitted")

	yes := func() (bool, error) { return true, nil }
	no := func() (bool, error) { return false, nil }
	broken := func() (bool, error) { return false, kernelErr }
	tests := []struct {
		name   string
		clock  Clock
		want   ClockState
		warned bool
	}{
		{"timesyncd flag", Clock{Root: synced, Kernel: no}, ClockState{Synced: true, Source: "systemd-timesyncd"}, false},
		{"kernel says synced", Clock{Root: unsynced, Kernel: yes}, ClockState{Synced: true, Source: "kernel"}, false},
		{"nobody says synced", Clock{Root: unsynced, Kernel: no}, ClockState{}, true},
		{"kernel cannot be asked", Clock{Root: unsynced, Kernel: broken}, ClockState{Err: kernelErr}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.clock.State(); got != tt.want {
				t.Fatalf("State = %+v, want %+v", got, tt.want)
			}
			if tt.clock.Synced() != tt.want.Synced {
				t.Fatal("Synced disagrees with State")
			}
			c, err := New(Config{DataDir: t.TempDir(), Clock: &tt.clock, LowDiskBytes: -1, LowDiskPercent: -1})
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(s.Warnings, func(w Warning) bool { return w.Code == "clock-unsynced" })
			if (i >= 0) != tt.warned || s.Clock != tt.want {
				t.Fatalf("snapshot clock %+v warnings %v", s.Clock, s.Warnings)
			}
		})
	}
}

func TestKernelSyncedDecision(t *testing.T) {
	tests := []struct {
		state  int
		status int32
		want   bool
	}{
		{unix.TIME_OK, 0, true},
		{unix.TIME_OK, unix.STA_PLL, true},
		{unix.TIME_INS, 0, true}, // leap second pending: still synchronised
		{unix.TIME_OK, unix.STA_UNSYNC, false},
		{unix.TIME_ERROR, 0, false},
		{unix.TIME_ERROR, unix.STA_UNSYNC | unix.STA_PLL, false},
	}
	for _, tt := range tests {
		if got := kernelSynced(tt.state, tt.status); got != tt.want {
			t.Errorf("kernelSynced(%d, %#x) = %v", tt.state, tt.status, got)
		}
	}
}

// The real adjtimex call works unprivileged (no modes set) and agrees with
// the decision on its own raw answer.
func TestKernelSyncedLive(t *testing.T) {
	ok, err := KernelSynced()
	if err != nil {
		t.Fatal(err)
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Fatal(err)
	}
	if ok != kernelSynced(state, tx.Status) {
		t.Fatalf("KernelSynced = %v, raw state %d status %#x", ok, state, tx.Status)
	}
	t.Logf("this machine: kernel clock synced = %v (state %d, status %#x); ClockSynced() = %v",
		ok, state, tx.Status, ClockSynced())
}
