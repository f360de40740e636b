package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/update/bootenv"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

const slotSize = 4 << 20

// box is an A/B system on files: a disk holding the boot state, two slot
// files and a state directory, and the boot script's choice in Go.
type box struct {
	t       *testing.T
	dir     string
	disk    string
	slots   map[Slot]string
	key     ed25519.PrivateKey
	keyring *bundle.Keyring
}

func devKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("keys/dev-release.key")
	if err != nil {
		t.Fatal(err)
	}
	k, err := bundle.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newBox is a freshly flashed card: slot A holds the image's system, B is
// empty, the boot state says "A B", A_LEFT=3, B_LEFT=0.
func newBox(t *testing.T) *box {
	t.Helper()
	dir := t.TempDir()
	bx := &box{t: t, dir: dir, disk: filepath.Join(dir, "disk"), slots: map[Slot]string{}, key: devKey(t)}
	bx.keyring = bundle.NewKeyring(bx.key.Public().(ed25519.PublicKey))
	if err := os.WriteFile(bx.disk, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Slot{SlotA, SlotB} {
		bx.slots[s] = filepath.Join(dir, "slot"+string(s))
		fill := byte(0)
		if s == SlotA {
			fill = 'A'
		}
		if err := os.WriteFile(bx.slots[s], bytes.Repeat([]byte{fill}, slotSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := bootenv.Default(bx.disk).Init(Boot{Order: []Slot{SlotA, SlotB}, Left: map[Slot]int{SlotA: 3, SlotB: 0}}.Env()); err != nil {
		t.Fatal(err)
	}
	return bx
}

// system is the box running slot cur with version v.
func (bx *box) system(cur Slot, v string) *System {
	return &System{Current: cur, Slots: bx.slots, Boot: bootenv.Default(bx.disk), Compatible: "rpi-arm64",
		Version: v, Keyring: bx.keyring, State: Dir(filepath.Join(bx.dir, "state"))}
}

// boot plays the boot script: choose a slot, take one boot from it, save.
func (bx *box) boot() Slot {
	bx.t.Helper()
	st := bootenv.Default(bx.disk)
	prev, err := st.Load()
	var b Boot
	if err != nil {
		b = DefaultBoot()
	} else if b, err = ParseBoot(prev.Env); err != nil {
		bx.t.Fatal(err)
	}
	s, next := b.Choose()
	env := next.Env()
	if _, err := st.Save(prev, env); err != nil {
		bx.t.Fatal(err)
	}
	return s
}

func (bx *box) bootState() Boot {
	bx.t.Helper()
	st, err := bootenv.Default(bx.disk).Load()
	if err != nil {
		bx.t.Fatal(err)
	}
	b, err := ParseBoot(st.Env)
	if err != nil {
		bx.t.Fatal(err)
	}
	return b
}

func image(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, size)
	for i := 0; i < size/2; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bundleFile writes a bundle of img as version v, signed by key.
func bundleFile(t *testing.T, img []byte, v string, key ed25519.PrivateKey, compat string) string {
	t.Helper()
	dir := t.TempDir()
	tmp, err := os.CreateTemp(dir, "payload")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	p := filepath.Join(dir, "update-"+v+".rpb")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := bundle.Create(out, bytes.NewReader(img), tmp, bundle.Options{Compatible: compat, Version: v, Signers: []ed25519.PrivateKey{key}}); err != nil {
		t.Fatal(err)
	}
	return p
}

func healthy(context.Context) error { return nil }

func never(context.Context) error { return errors.New("homenode.service is activating") }

func commitOpts(h func(context.Context) error) CommitOptions {
	return CommitOptions{Healthy: h, Timeout: 300 * time.Millisecond, Poll: 50 * time.Millisecond}
}

func TestGoodUpdateCommits(t *testing.T) {
	bx := newBox(t)
	if s := bx.boot(); s != SlotA {
		t.Fatalf("first boot: slot %s", s)
	}
	if out, _, err := bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy)); err != nil || out != Routine {
		t.Fatalf("first boot commit: %v %v", out, err)
	}
	img := image(1, 3<<20+17)
	var phases []string
	inst, err := bx.system(SlotA, "1.0-1").Install(bundleFile(t, img, "1.1-1", bx.key, "rpi-arm64"), InstallOptions{Source: "file",
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
			if p.Phase == PhaseWriting || p.Phase == PhaseChecking {
				// A power cut now: the script must boot A.
				if b := bx.bootState(); b.Left[SlotB] != 0 || b.Order[0] != SlotA {
					t.Errorf("during %s the boot state is %v: a power cut would boot a half-written slot", p.Phase, b)
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Slot != SlotB || inst.Written != int64(len(img)) {
		t.Errorf("installed %+v", inst)
	}
	if want := []string{PhaseVerifying, PhaseWriting, PhaseChecking, PhaseInstalled}; strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %v, want %v", phases, want)
	}
	got, _ := os.ReadFile(bx.slots[SlotB])
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("slot B does not hold the image")
	}
	if a, _ := os.ReadFile(bx.slots[SlotA]); !bytes.Equal(a, bytes.Repeat([]byte{'A'}, slotSize)) {
		t.Fatal("slot A was changed")
	}
	// Not rebooted yet: a commit run now leaves the trial pending.
	if out, _, err := bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy)); err != nil || out != Pending {
		t.Fatalf("commit before the reboot: %v %v", out, err)
	}
	if s := bx.boot(); s != SlotB {
		t.Fatalf("boot after install: slot %s, want B", s)
	}
	out, res, err := bx.system(SlotB, "1.1-1").Commit(context.Background(), commitOpts(healthy))
	if err != nil || out != UpdateCommitted {
		t.Fatalf("trial commit: %v %v", out, err)
	}
	if res.Message() != "updated to 1.1-1 (from 1.0-1)" || res.Tries != 1 {
		t.Errorf("result %+v: %q", res, res.Message())
	}
	rec, _ := bx.system(SlotB, "1.1-1").State.ReadRecord()
	if rec.Trial != nil || rec.Last == nil || rec.Last.ID != res.ID || rec.Slots[SlotA] != "1.0-1" || rec.Slots[SlotB] != "1.1-1" {
		t.Errorf("record %+v", rec)
	}
	for i := 0; i < 5; i++ {
		if s := bx.boot(); s != SlotB {
			t.Fatalf("boot %d after commit: slot %s", i, s)
		}
		if out, _, err := bx.system(SlotB, "1.1-1").Commit(context.Background(), commitOpts(healthy)); err != nil || out != Routine {
			t.Fatalf("routine commit: %v %v", out, err)
		}
	}
	// The old system stays the fallback: B stops booting, A comes back.
	for i := 0; i < CommittedTries; i++ {
		if s := bx.boot(); s != SlotB {
			t.Fatalf("failing boot %d: slot %s", i, s)
		}
	}
	if s := bx.boot(); s != SlotA {
		t.Fatalf("after B failed %d boots: slot %s, want A", CommittedTries, s)
	}
}

func TestUnhealthyUpdateRollsBack(t *testing.T) {
	for _, tries := range []int{1, 2} {
		t.Run(fmt.Sprintf("tries=%d", tries), func(t *testing.T) {
			bx := newBox(t)
			bx.boot()
			if _, err := bx.system(SlotA, "1.0-1").Install(bundleFile(t, image(2, 1<<20), "1.1-1", bx.key, "rpi-arm64"), InstallOptions{Tries: tries}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tries; i++ {
				if s := bx.boot(); s != SlotB {
					t.Fatalf("trial boot %d: slot %s", i, s)
				}
				_, _, err := bx.system(SlotB, "1.1-1").Commit(context.Background(), commitOpts(never))
				if !errors.Is(err, ErrNotHealthy) {
					t.Fatalf("trial commit = %v, want ErrNotHealthy", err)
				}
			}
			if s := bx.boot(); s != SlotA {
				t.Fatalf("after %d failed tries: slot %s, want A", tries, s)
			}
			out, res, err := bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy))
			if err != nil || out != RolledBack {
				t.Fatalf("commit on the old system: %v %v", out, err)
			}
			want := fmt.Sprintf("update to 1.1-1 failed after %d tr", tries)
			if !strings.HasPrefix(res.Message(), want) || !strings.Contains(res.Message(), "back on 1.0-1") {
				t.Errorf("message %q, want it to start %q", res.Message(), want)
			}
			for i := 0; i < 4; i++ {
				if s := bx.boot(); s != SlotA {
					t.Fatalf("boot %d after the rollback: slot %s", i, s)
				}
				bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy))
			}
			// A second attempt, fixed, installs and commits.
			if _, err := bx.system(SlotA, "1.0-1").Install(bundleFile(t, image(3, 1<<20), "1.1-2", bx.key, "rpi-arm64"), InstallOptions{}); err != nil {
				t.Fatal(err)
			}
			if s := bx.boot(); s != SlotB {
				t.Fatalf("second attempt: slot %s", s)
			}
			if out, _, err := bx.system(SlotB, "1.1-2").Commit(context.Background(), commitOpts(healthy)); err != nil || out != UpdateCommitted {
				t.Fatalf("second attempt: %v %v", out, err)
			}
		})
	}
}

// TestRefusedBeforeWriting: a tampered bundle, one signed by another key,
// an older version, another board's and one too large for the slot are
// refused, and nothing on the disk or in the slots changes.
func TestRefusedBeforeWriting(t *testing.T) {
	bx := newBox(t)
	bx.boot()
	bx.system(SlotA, "1.2-1").Commit(context.Background(), commitOpts(healthy))
	_, other, _ := ed25519.GenerateKey(nil)
	good := bundleFile(t, image(4, 1<<20), "1.3-1", bx.key, "rpi-arm64")
	raw, _ := os.ReadFile(good)
	tampered := filepath.Join(t.TempDir(), "tampered.rpb")
	bad := bytes.Clone(raw)
	bad[len(bad)-5000] ^= 1
	os.WriteFile(tampered, bad, 0o644)
	cases := map[string]struct {
		path string
		want error
	}{
		"tampered":  {tampered, bundle.ErrPayloadHash},
		"other key": {bundleFile(t, image(4, 1<<20), "1.3-1", other, "rpi-arm64"), bundle.ErrUntrustedKey},
		"older":     {bundleFile(t, image(4, 1<<20), "1.1-1", bx.key, "rpi-arm64"), bundle.ErrOlder},
		"same":      {bundleFile(t, image(4, 1<<20), "1.2-1", bx.key, "rpi-arm64"), bundle.ErrSameVersion},
		"board":     {bundleFile(t, image(4, 1<<20), "1.3-1", bx.key, "rpi-armhf"), bundle.ErrIncompatible},
		"too large": {bundleFile(t, image(4, slotSize+1), "1.3-1", bx.key, "rpi-arm64"), ErrTooLarge},
		"garbage":   {writeTemp(t, []byte("not a bundle at all")), bundle.ErrMalformed},
	}
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			before := snapshot(t, bx)
			_, err := bx.system(SlotA, "1.2-1").Install(tt.path, InstallOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Install = %v, want %v", err, tt.want)
			}
			if after := snapshot(t, bx); !bytes.Equal(before, after) {
				t.Fatal("the disk or a slot changed")
			}
			p, ok, _ := bx.system(SlotA, "1.2-1").State.ReadProgress()
			if !ok || p.Phase != PhaseRefused || p.Error == "" {
				t.Errorf("progress %+v, want refused with the reason", p)
			}
		})
	}
	// The owner may force the older one.
	if _, err := bx.system(SlotA, "1.2-1").Install(cases["older"].path, InstallOptions{AllowOlder: true}); err != nil {
		t.Fatalf("forced downgrade: %v", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, b, 0o644)
	return p
}

func snapshot(t *testing.T, bx *box) []byte {
	var all []byte
	for _, p := range []string{bx.disk, bx.slots[SlotA], bx.slots[SlotB]} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestCutDuringWrite: an installation that stops while writing (here the
// image fails its hash at the end, as a changed file would) leaves slot B
// out of the boot order: the box boots A, and a retry succeeds.
func TestCutDuringWrite(t *testing.T) {
	bx := newBox(t)
	bx.boot()
	img := image(5, 2<<20)
	p := bundleFile(t, img, "1.1-1", bx.key, "rpi-arm64")
	// Change the file after it was verified: swap it for a tampered copy
	// once writing starts.
	raw, _ := os.ReadFile(p)
	var once sync.Once
	_, err := bx.system(SlotA, "1.0-1").Install(p, InstallOptions{Progress: func(pr Progress) {
		if pr.Phase == PhaseWriting {
			once.Do(func() {
				f, _ := os.OpenFile(p, os.O_WRONLY, 0)
				f.WriteAt([]byte{raw[len(raw)-10] ^ 0xff}, int64(len(raw)-10))
				f.Close()
			})
		}
	}})
	if !errors.Is(err, bundle.ErrPayloadHash) {
		t.Fatalf("Install = %v, want ErrPayloadHash", err)
	}
	for i := 0; i < 3; i++ {
		if s := bx.boot(); s != SlotA {
			t.Fatalf("boot %d: slot %s, want A", i, s)
		}
		bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy))
	}
	os.WriteFile(p, raw, 0o644)
	if _, err := bx.system(SlotA, "1.0-1").Install(p, InstallOptions{}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if s := bx.boot(); s != SlotB {
		t.Fatalf("after the retry: slot %s", s)
	}
}

func TestInstallBusy(t *testing.T) {
	bx := newBox(t)
	sys := bx.system(SlotA, "1.0-1")
	unlock, err := sys.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := sys.Install(bundleFile(t, image(6, 1<<20), "1.1-1", bx.key, "rpi-arm64"), InstallOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Install while locked = %v, want ErrBusy", err)
	}
}

// TestDamagedBootState: with both copies of the boot state gone, the
// script boots its defaults and Commit writes a state that keeps the
// running system first.
func TestDamagedBootState(t *testing.T) {
	bx := newBox(t)
	f, _ := os.OpenFile(bx.disk, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, 8), bootenv.DefaultOffset0)
	f.WriteAt(make([]byte, 8), bootenv.DefaultOffset1)
	f.Close()
	if s := bx.boot(); s != SlotA {
		t.Fatalf("defaults boot %s", s)
	}
	if out, _, err := bx.system(SlotA, "1.0-1").Commit(context.Background(), commitOpts(healthy)); err != nil || out != Routine {
		t.Fatalf("commit: %v %v", out, err)
	}
	if b := bx.bootState(); b.Order[0] != SlotA || b.Left[SlotA] != CommittedTries || b.Left[SlotB] != 0 {
		t.Errorf("boot state after commit: %v", b)
	}
}

func TestBootChoose(t *testing.T) {
	for _, tt := range []struct {
		in   Boot
		want Slot
		left map[Slot]int
	}{
		{Boot{Order: []Slot{SlotA, SlotB}, Left: map[Slot]int{SlotA: 3, SlotB: 3}}, SlotA, map[Slot]int{SlotA: 2, SlotB: 3}},
		{Boot{Order: []Slot{SlotB, SlotA}, Left: map[Slot]int{SlotA: 3, SlotB: 0}}, SlotA, map[Slot]int{SlotA: 2, SlotB: 0}},
		{Boot{Order: []Slot{SlotA}, Left: map[Slot]int{SlotA: 0, SlotB: 3}}, SlotA, map[Slot]int{SlotA: 2, SlotB: 3}},
		{Boot{}, SlotA, map[Slot]int{SlotA: 2, SlotB: 3}},
	} {
		s, next := tt.in.Choose()
		if s != tt.want || next.Left[SlotA] != tt.left[SlotA] || next.Left[SlotB] != tt.left[SlotB] {
			t.Errorf("Choose(%v) = %s, %v; want %s, %v", tt.in, s, next, tt.want, tt.left)
		}
	}
	if _, err := ParseBoot(bootenv.Env{"BOOT_ORDER": "A C"}); err == nil {
		t.Error("ParseBoot accepted slot C")
	}
	if _, err := ParseBoot(bootenv.Env{"BOOT_A_LEFT": "x"}); err == nil {
		t.Error("ParseBoot accepted a non-number")
	}
}

// TestDetect reads a /sys laid out like QEMU virt's: / on vda2.
func TestDetect(t *testing.T) {
	root := t.TempDir()
	var st statT
	if err := stat(root, &st); err != nil {
		t.Fatal(err)
	}
	sys := t.TempDir()
	devs := filepath.Join(sys, "devices/platform/a000000.virtio_mmio/block/vda")
	for _, p := range []string{"vda1", "vda2", "vda3", "vda4"} {
		os.MkdirAll(filepath.Join(devs, p), 0o755)
		os.WriteFile(filepath.Join(devs, p, "partition"), []byte(p[3:]+"\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
	os.Symlink(filepath.Join(devs, "vda2"), filepath.Join(sys, "dev/block", st.majmin()))
	os.MkdirAll(filepath.Join(sys, "block"), 0o755)
	os.Symlink(devs, filepath.Join(sys, "block/vda"))
	etc := t.TempDir()
	os.WriteFile(filepath.Join(etc, "compatible"), []byte("rpi-arm64\n"), 0o644)
	cmdline := filepath.Join(etc, "cmdline")
	opts := DetectOptions{Root: root, SysRoot: sys, DevRoot: "/dev", Cmdline: cmdline, Keyring: "keys",
		Compatible: filepath.Join(etc, "compatible"), StateDir: t.TempDir(), Version: "1.0-1"}

	os.WriteFile(cmdline, []byte("root=PARTUUID=1234-02 rw panic=10 homenode.slot=A console=ttyAMA0\n"), 0o644)
	s, err := Detect(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Current != SlotA || s.Slots[SlotA] != "/dev/vda2" || s.Slots[SlotB] != "/dev/vda3" || s.Boot.Path != "/dev/vda" || s.Compatible != "rpi-arm64" {
		t.Errorf("detected %+v (boot %s)", s, s.Boot.Path)
	}
	os.WriteFile(cmdline, []byte("root=PARTUUID=1234-03 homenode.slot=B\n"), 0o644)
	if _, err := Detect(opts); err == nil || !strings.Contains(err.Error(), "partition 2") {
		t.Errorf("slot B on partition 2: %v", err)
	}
	os.WriteFile(cmdline, []byte("root=/dev/mmcblk0p2 rw\n"), 0o644)
	if _, err := Detect(opts); !errors.Is(err, ErrNotAB) {
		t.Errorf("no homenode.slot: %v, want ErrNotAB", err)
	}
}

type statT struct{ unix.Stat_t }

func stat(p string, st *statT) error { return unix.Stat(p, &st.Stat_t) }

func (s statT) majmin() string { return fmt.Sprintf("%d:%d", unix.Major(s.Dev), unix.Minor(s.Dev)) }
