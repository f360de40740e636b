package update

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/redpanda-p2p/homenode/update/bootenv"
)

// failedCommitBoots plays the board from its next boot on with a commit
// step that always fails: after each failure the fallback decides, and a
// reboot boots again. It returns the slots booted, up to the boot where the
// board stays up; more than max boots is a reboot loop.
func failedCommitBoots(t *testing.T, bx *box, versions map[Slot]string, max int) []Slot {
	t.Helper()
	var booted []Slot
	for range max {
		s := bx.boot()
		booted = append(booted, s)
		f := bx.system(s, versions[s]).Fallback()
		t.Logf("boot %d: slot %s: reboot=%v: %s", len(booted), s, f.Reboot, f.Why)
		if !f.Reboot {
			return booted
		}
	}
	t.Fatalf("a failing commit step rebooted the board %d times in a row: %v", max, booted)
	return nil
}

// TestFallbackOnlyOnTrial: a failure of the commit step reboots the board
// only on the trial boot of a new system, as many times as the trial has
// tries, and never on a freshly flashed card or a committed system, where a
// reboot would loop for ever.
func TestFallbackOnlyOnTrial(t *testing.T) {
	v := map[Slot]string{SlotA: "1.0-1", SlotB: "1.1-1"}

	t.Run("fresh card", func(t *testing.T) {
		bx := newBox(t)
		if got := failedCommitBoots(t, bx, v, 10); len(got) != 1 || got[0] != SlotA {
			t.Errorf("booted %v, want [A] and up", got)
		}
	})

	t.Run("committed system", func(t *testing.T) {
		bx := newBox(t)
		bx.boot()
		if _, _, err := bx.system(SlotA, v[SlotA]).Commit(context.Background(), commitOpts(healthy)); err != nil {
			t.Fatal(err)
		}
		if got := failedCommitBoots(t, bx, v, 10); len(got) != 1 || got[0] != SlotA {
			t.Errorf("booted %v, want [A] and up", got)
		}
	})

	for _, tries := range []int{1, 3} {
		t.Run(fmt.Sprintf("trial, %d tries", tries), func(t *testing.T) {
			bx := newBox(t)
			bx.boot()
			if _, _, err := bx.system(SlotA, v[SlotA]).Commit(context.Background(), commitOpts(healthy)); err != nil {
				t.Fatal(err)
			}
			if _, err := bx.system(SlotA, v[SlotA]).Install(bundleFile(t, image(5, 1<<20), v[SlotB], bx.key, "rpi-arm64"), InstallOptions{Tries: tries}); err != nil {
				t.Fatal(err)
			}
			// Installed, not booted yet: a failure of the commit step
			// on the old system does not reboot.
			if f := bx.system(SlotA, v[SlotA]).Fallback(); f.Reboot {
				t.Fatalf("update pending a reboot: fallback reboots (%s)", f.Why)
			}
			got := failedCommitBoots(t, bx, v, 10)
			want := tries + 1 // every try of B, then A stays up
			if len(got) != want || got[len(got)-1] != SlotA {
				t.Fatalf("booted %v, want %d tries of B then A, up", got, tries)
			}
			for _, s := range got[:tries] {
				if s != SlotB {
					t.Fatalf("booted %v, want %d tries of B then A", got, tries)
				}
			}
			// Back on A, its commit step records the rollback; a later
			// failure there still does not reboot.
			if out, _, err := bx.system(SlotA, v[SlotA]).Commit(context.Background(), commitOpts(healthy)); err != nil || out != RolledBack {
				t.Fatalf("commit after the rollback: %v %v", out, err)
			}
			if got := failedCommitBoots(t, bx, v, 10); len(got) != 1 || got[0] != SlotA {
				t.Errorf("after the rollback: booted %v, want [A] and up", got)
			}
		})
	}

	t.Run("boot state unreadable", func(t *testing.T) {
		bx := newBox(t)
		bx.boot()
		if _, err := bx.system(SlotA, v[SlotA]).Install(bundleFile(t, image(6, 1<<20), v[SlotB], bx.key, "rpi-arm64"), InstallOptions{}); err != nil {
			t.Fatal(err)
		}
		if s := bx.boot(); s != SlotB {
			t.Fatalf("trial boot: slot %s", s)
		}
		f, err := os.OpenFile(bx.disk, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(make([]byte, 8), bootenv.DefaultOffset0)
		f.WriteAt(make([]byte, 8), bootenv.DefaultOffset1)
		f.Close()
		if fb := bx.system(SlotB, v[SlotB]).Fallback(); fb.Reboot {
			t.Errorf("unreadable boot state: fallback reboots (%s)", fb.Why)
		}
	})
}

func TestDecideFallback(t *testing.T) {
	trialB := Boot{Order: []Slot{SlotB, SlotA}, Left: map[Slot]int{SlotA: 3, SlotB: 0}, Trial: SlotB}
	for _, tt := range []struct {
		name string
		boot Boot
		err  error
		cur  Slot
		want bool
	}{
		{"trial of the running slot", trialB, nil, SlotB, true},
		{"trial of the other slot, not booted", trialB, nil, SlotA, false},
		{"committed", Boot{Order: []Slot{SlotA, SlotB}, Left: map[Slot]int{SlotA: 3}}, nil, SlotA, false},
		{"unreadable boot state", trialB, errors.New("bad CRC"), SlotB, false},
		{"running slot unknown", trialB, nil, "", false},
	} {
		if got := DecideFallback(tt.boot, tt.err, tt.cur); got.Reboot != tt.want || got.Why == "" {
			t.Errorf("%s: %+v, want reboot=%v and a reason", tt.name, got, tt.want)
		}
	}
}

// TestCommitFailureRecorded: a failure of the commit step on a boot that
// is not a trial is kept for the owner until a commit succeeds.
func TestCommitFailureRecorded(t *testing.T) {
	bx := newBox(t)
	bx.boot()
	sys := bx.system(SlotA, "1.0-1")
	if err := sys.State.RecordCommitFailure("the node's store: locked"); err != nil {
		t.Fatal(err)
	}
	rec, err := sys.State.ReadRecord()
	if err != nil || rec.CommitFailed == nil || rec.CommitFailed.Error != "the node's store: locked" || rec.CommitFailed.At.IsZero() {
		t.Fatalf("record %+v %v", rec, err)
	}
	if _, _, err := sys.Commit(context.Background(), commitOpts(healthy)); err != nil {
		t.Fatal(err)
	}
	if rec, _ := sys.State.ReadRecord(); rec.CommitFailed != nil {
		t.Errorf("after a commit: %+v", rec.CommitFailed)
	}
}
