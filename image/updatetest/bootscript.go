package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bootenv"
)

// scenarioBootScript runs the image's boot script (boot.scr, from the
// image's boot partition) on Debian's U-Boot against random boot states,
// damaged copies among them, and checks that it chooses and saves what the
// Go side (update.Boot.Choose, package bootenv) expects. The card's slots
// hold no kernel, so each run ends in the script's "does not boot" branch:
// the chosen slot loses its boots, and the board resets (QEMU -no-reboot
// exits).
func scenarioBootScript(n int) error {
	work := filepath.Join(*dir, "work", "bootscript")
	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	disk := filepath.Join(work, "disk.img")
	if err := makeScriptDisk(work, disk); err != nil {
		return err
	}
	st := bootenv.Default(disk)
	for i := range n {
		want, err := randomState(st, i)
		if err != nil {
			return err
		}
		log := filepath.Join(work, fmt.Sprintf("run-%d.log", i))
		cmd := exec.Command("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "512", "-display", "none",
			"-bios", *uboot, "-serial", "file:"+log, "-monitor", "none", "-no-reboot",
			"-drive", "file="+disk+",if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0")
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			cmd.Process.Kill()
			return fmt.Errorf("run %d: U-Boot did not reset within 5 minutes (%s)", i, log)
		}
		got, err := st.Load()
		if err != nil {
			return fmt.Errorf("run %d: the script left no valid boot state: %w (%s)", i, err, log)
		}
		if !maps.Equal(got.Env, want) {
			return fmt.Errorf("run %d: the script saved %v, the Go side expects %v (%s)", i, got.Env, want, log)
		}
	}
	result("boot script: %d random boot states (orders, counts, trials, damaged copies) on the real U-Boot: every choice and save as the Go side computes", n)
	return nil
}

// makeScriptDisk lays out a card like the image's with only the boot
// partition filled: boot.scr from image/boot.cmd.
func makeScriptDisk(work, disk string) error {
	scr := filepath.Join(work, "boot.scr")
	vfat := filepath.Join(work, "boot.vfat")
	cmds := [][]string{
		{"mkimage", "-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-d", "image/boot.cmd", scr},
		{"truncate", "-s", "64M", disk},
		{"mkfs.vfat", "-n", "RASPIFIRM", "-C", vfat, "16384"},
		{"mcopy", "-i", vfat, scr, "::/boot.scr"},
		{"dd", "if=" + vfat, "of=" + disk, "bs=1M", "seek=4", "conv=notrunc", "status=none"},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	sf := exec.Command("sfdisk", "--quiet", disk)
	sf.Stdin = strings.NewReader("label: dos\nunit: sectors\nstart=8192, size=32768, type=c, bootable\nstart=40960, size=32768, type=83\nstart=73728, size=32768, type=83\nstart=106496, size=24576, type=83\n")
	if out, err := sf.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk: %v: %s", err, out)
	}
	return nil
}

// randomState writes a random boot state (sometimes with one copy damaged,
// sometimes both) and returns the state the script must leave.
func randomState(st *bootenv.Store, i int) (bootenv.Env, error) {
	orders := [][]update.Slot{{update.SlotA, update.SlotB}, {update.SlotB, update.SlotA}, {update.SlotA}, {update.SlotB}, {}}
	b := update.Boot{Order: orders[rng.IntN(len(orders))], Left: map[update.Slot]int{update.SlotA: rng.IntN(4), update.SlotB: rng.IntN(4)}}
	if rng.IntN(3) == 0 {
		b.Trial = []update.Slot{update.SlotA, update.SlotB}[rng.IntN(2)]
	}
	if err := st.Init(update.Boot{Order: []update.Slot{update.SlotA}, Left: map[update.Slot]int{update.SlotA: 1}}.Env()); err != nil {
		return nil, err
	}
	// Walk the flags a random number of saves forward (past 255 at times).
	for range rng.IntN(300) {
		prev, _ := st.Load()
		if _, err := st.Save(prev, prev.Env); err != nil {
			return nil, err
		}
	}
	prev, _ := st.Load()
	if _, err := st.Save(prev, b.Env()); err != nil {
		return nil, err
	}
	expect := b
	damage := rng.IntN(5)
	f, err := os.OpenFile(st.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cur, _ := st.Load()
	switch damage {
	case 0: // the newest copy damaged: the one before (the walk's) counts
		f.WriteAt([]byte{0x55, 0xaa}, st.Offsets[cur.Current]+20)
		if expect, err = update.ParseBoot(cur.Copies[1-cur.Current].Env); err != nil {
			return nil, err
		}
	case 1: // both damaged: the script's defaults
		for _, off := range st.Offsets {
			f.WriteAt([]byte{0x55, 0xaa}, off+20)
		}
		expect = update.DefaultBoot()
	}
	f.Sync()
	slot, next := expect.Choose()
	next.Left[slot] = 0 // its kernel does not load: no more tries
	return next.Env(), nil
}
