package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// applyViaFeed sets the node's feed to one listing bundleFile; the node
// checks at once, fetches, checks the bundle and asks for its
// installation. It returns when the phone's command returned.
func applyViaFeed(b *box, srv *server, name, bundleFile string, rate string) (time.Time, error) {
	url, err := srv.feed(name, bundleFile)
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	_, err = b.phone("node", "update", "feed", url, "--rate", rate)
	return t0, err
}

// scenarioGood: N -> N+1 from the release feed commits; the phone learns
// it in the master channel; identity and messages are kept.
func scenarioGood(b *box, srv *server) error {
	if err := b.boot(); err != nil {
		return err
	}
	if _, err := b.ready(); err != nil {
		return err
	}
	w0 := b.vm.written()
	t0, err := applyViaFeed(b, srv, "good", "next.rpb", "-1")
	if err != nil {
		return err
	}
	if _, err := b.vm.waitFor(`update: bundle checked; the installer takes it from here`, *stepTimeout); err != nil {
		return err
	}
	tChecked := time.Since(t0)
	if _, err := b.vm.waitFor(`homenode: booting slot B`, *stepTimeout); err != nil {
		return err
	}
	tReboot := time.Since(t0)
	w1 := b.vm.written()
	line, err := b.vm.waitFor(`update: updated to `+*versionNext, *stepTimeout)
	if err != nil {
		return err
	}
	tCommit := time.Since(t0)
	w2 := b.vm.written()
	logf("%s", line)
	st, err := b.status()
	if err != nil {
		return err
	}
	if st.Version != *versionNext || st.Update == nil || st.Update.Slot != "B" || !strings.HasPrefix(st.Update.Last, "updated to "+*versionNext) {
		return fmt.Errorf("after the update the node says version %s, update %+v", st.Version, st.Update)
	}
	if err := b.checkKept(st); err != nil {
		return err
	}
	result("good (feed): apply -> bundle checked %s, -> reboot into B %s, -> committed %s (emulated, 2 cores)",
		tChecked.Round(time.Second), tReboot.Round(time.Second), tCommit.Round(time.Second))
	// wr_bytes counts from QEMU's start, across the guest's reboot.
	result("good (feed): written to the SD card: %s up to the reboot (download into the spool + slot B + state), %s in all to the commit (QEMU wr_bytes)",
		mib(w1-w0), mib(w2-w0))
	// The owner's phone hears of it in the master channel.
	if err := b.waitReport("updated to " + *versionNext); err != nil {
		return err
	}
	result("good (feed): committed on B, same identity, %d acknowledged messages kept, the phone got %q in the master channel", b.acked, "updated to "+*versionNext)
	return nil
}

// waitReport has the phone sync its channels until the node's report
// starting with text is in the owner's master channel (redpanda node
// reports): the message the owner reads on the phone.
func (b *box) waitReport(text string) error {
	var out string
	for round := 1; round <= 4; round++ {
		if err := b.listen(60 * time.Second); err != nil {
			return err
		}
		var err error
		if out, err = b.phone("node", "reports", "--json"); err != nil {
			return err
		}
		var reports []struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(out), &reports); err != nil {
			return fmt.Errorf("redpanda node reports --json: %v: %s", err, out)
		}
		for _, r := range reports {
			if strings.HasPrefix(r.Text, text) {
				logf("the phone has the node's report %q in the master channel (after %d minute(s) of listening)", r.Text, round)
				return nil
			}
		}
	}
	return fmt.Errorf("no %q report in the master channel after 4 minutes of listening: %s", text, out)
}

// listen runs the phone's client for a while so it syncs its channels
// (the master channel with the node's reports among them), then stops it
// as a person would (Ctrl-C).
func (b *box) listen(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, *redpanda, "listen", "--home", b.home)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() == nil && err != nil {
		return fmt.Errorf("redpanda listen: %v: %s", err, out)
	}
	return nil
}

// scenarioUpload: the phone carries the bundle (owner protocol upload).
func scenarioUpload(b *box, srv *server) error {
	if err := b.boot(); err != nil {
		return err
	}
	if _, err := b.ready(); err != nil {
		return err
	}
	t0 := time.Now()
	out, err := b.phone("node", "update", "apply", "--file", filepath.Join(*dir, "next.rpb"))
	if err != nil {
		return err
	}
	tUp := time.Since(t0)
	logf("%s", strings.TrimSpace(out))
	if _, err := b.vm.waitFor(`update: updated to `+*versionNext, *stepTimeout); err != nil {
		return err
	}
	st, err := b.status()
	if err != nil {
		return err
	}
	if st.Version != *versionNext {
		return fmt.Errorf("version %s after the upload", st.Version)
	}
	if err := b.checkKept(st); err != nil {
		return err
	}
	result("upload (phone carries the bundle): sent and checked in %s, committed %s after the start", tUp.Round(time.Second), time.Since(t0).Round(time.Second))
	return nil
}

// failedTrial applies a bad bundle from the feed and waits for the old
// system to say the update failed.
func failedTrial(b *box, srv *server, name, bundleFile, version, want string) (time.Duration, error) {
	t0, err := trialOfB(b, srv, name, bundleFile)
	if err != nil {
		return 0, err
	}
	if want != "" {
		if _, err := b.vm.waitFor(want, *stepTimeout); err != nil {
			return 0, err
		}
	}
	took, last, msg, err := backOnA(b, t0, version)
	if err != nil {
		return 0, err
	}
	result("%s: the status says %q; the phone got %q in the master channel", name, last, msg)
	return took, nil
}

// trialOfB boots the box, has it apply bundleFile from the feed and waits
// for U-Boot to start B's trial; it returns when the apply was asked.
func trialOfB(b *box, srv *server, name, bundleFile string) (time.Time, error) {
	if err := b.boot(); err != nil {
		return time.Time{}, err
	}
	if _, err := b.ready(); err != nil {
		return time.Time{}, err
	}
	t0, err := applyViaFeed(b, srv, name, bundleFile, "-1")
	if err != nil {
		return time.Time{}, err
	}
	if _, err := b.vm.waitFor(`homenode: booting slot B`, *stepTimeout); err != nil {
		return time.Time{}, err
	}
	return t0, nil
}

// backOnA waits, after B's trial of version failed, for A to boot and say
// so, and checks what the owner sees: the status's last update, the same
// identity and acknowledged messages, and the node's report in the phone's
// master channel. It returns the time since t0 (the apply) until A said
// so, the status's last update and the message looked for.
func backOnA(b *box, t0 time.Time, version string) (took time.Duration, last, msg string, err error) {
	if _, err := b.vm.waitFor(`homenode: booting slot A`, *stepTimeout); err != nil {
		return 0, "", "", err
	}
	msg = "update to " + version + " failed after 1 try, back on " + *versionN
	if _, err := b.vm.waitFor(`update: `+regexp.QuoteMeta(msg), *stepTimeout); err != nil {
		return 0, "", "", err
	}
	took = time.Since(t0)
	st, err := b.status()
	if err != nil {
		return 0, "", "", err
	}
	if st.Version != *versionN || st.Update == nil || st.Update.Slot != "A" || !strings.HasPrefix(st.Update.Last, msg) {
		return 0, "", "", fmt.Errorf("after the rollback: version %s, update %+v; want the last update %q", st.Version, st.Update, msg)
	}
	if err := b.checkKept(st); err != nil {
		return 0, "", "", err
	}
	// The owner's phone hears of it in the master channel.
	if err := b.waitReport(msg); err != nil {
		return 0, "", "", err
	}
	return took, st.Update.Last, msg, nil
}

func scenarioNeverReady(b *box, srv *server) error {
	took, err := failedTrial(b, srv, "never-ready", "never-ready.rpb", "9.0.2-1", `homenode-commit\.service: Failed|homenode: trial of .* not committed|not committed`)
	if err != nil {
		return err
	}
	result("never-ready: rolled back by itself to %s %s after apply (commit bound 2 min in test images), identity and messages kept", *versionN, took.Round(time.Second))
	return nil
}

// scenarioDataLate: a new version whose data partition does not come up on
// its trial boot (its fstab waits for a label no disk has, 30 s): the
// node, the commit step and everything that needs /var/lib/homenode fail
// on the missing mount. The fallback must still reboot the board (it needs
// only the boot state and the kernel command line) and A come back by
// itself. Before that was so, the fallback unit failed on the same mount
// and the board stayed on the trial system with no node: the scenario
// says "stranded" then, after watching for a rollback a few minutes.
func scenarioDataLate(b *box, srv *server) error {
	t0, err := trialOfB(b, srv, "data-late", "data-late.rpb")
	if err != nil {
		return err
	}
	line, err := b.vm.waitFor(`Dependency failed for homenode-commit\.service|homenode-commit\.service: Failed`, *stepTimeout)
	if err != nil {
		return err
	}
	logf("%s", strings.TrimSpace(line))
	line, err = b.vm.waitFor(`Dependency failed for homenode-fallback\.service|trial of slot B failed: rebooting into slot A`, *stepTimeout)
	if err != nil {
		return err
	}
	logf("%s", strings.TrimSpace(line))
	if strings.Contains(line, "Dependency failed") {
		// Watch a while: nothing else on the trial system reboots it.
		if l, err := b.vm.waitFor(`homenode: booting slot A`, 4*time.Minute); err == nil {
			return fmt.Errorf("the fallback unit failed on its dependency, yet the board rebooted: %s", strings.TrimSpace(l))
		}
		return fmt.Errorf("stranded on the trial system: homenode-fallback.service failed on the missing data partition (%s) and nothing rebooted the board in 4 min", strings.TrimSpace(line))
	}
	tFallback := time.Since(t0)
	took, _, msg, err := backOnA(b, t0, "9.0.4-1")
	if err != nil {
		return err
	}
	result("data-late: B's data partition never came up (30 s device timeout); the fallback rebooted %s after apply, back on %s %s after apply; the status and the phone's master channel said %q; same identity, %d acknowledged messages kept",
		tFallback.Round(time.Second), *versionN, took.Round(time.Second), msg, b.acked)
	return nil
}

func scenarioHang(b *box, srv *server) error {
	took, err := failedTrial(b, srv, "hang", "hang.rpb", "9.0.3-1", `Kernel panic|sysrq triggered crash`)
	if err != nil {
		return err
	}
	result("hang: the watchdog reset the locked-up kernel, rolled back to %s %s after apply, identity and messages kept", *versionN, took.Round(time.Second))
	return nil
}

// scenarioRefused: bundles the phone carries that must be refused, with
// slot B untouched.
func scenarioRefused(b *box, srv *server) error {
	if err := b.boot(); err != nil {
		return err
	}
	if _, err := b.ready(); err != nil {
		return err
	}
	for _, c := range []struct{ file, want string }{
		{"other-key.rpb", "not signed by a trusted release key"},
		{"older.rpb", "older than the running version"},
		{"tampered.rpb", "payload does not match"},
	} {
		out, err := b.phone("node", "update", "apply", "--file", filepath.Join(*dir, c.file))
		if err == nil || !strings.Contains(out+err.Error(), c.want) {
			return fmt.Errorf("%s: %v %s; want refused with %q", c.file, err, out, c.want)
		}
		logf("%s refused: %s", c.file, c.want)
	}
	written, err := b.slotBWritten()
	if err != nil {
		return err
	}
	if written {
		return fmt.Errorf("slot B was written")
	}
	st, err := b.status()
	if err != nil {
		return err
	}
	if st.Version != *versionN {
		return fmt.Errorf("version %s", st.Version)
	}
	result("refused: a bundle signed by another key, an older one and a tampered one, carried by the phone: all refused, nothing written to slot B (qemu-img map of the card)")
	return nil
}

// scenarioCuts cuts the power at random moments of each phase, many times.
func scenarioCuts(base *box, srv *server) error {
	counts := map[string]map[string]int{}
	var failures []string
	for _, phase := range []string{"download", "write", "first boot"} {
		counts[phase] = map[string]int{}
		for i := range *cuts {
			b, err := base.clone(fmt.Sprintf("cut-%s-%d", strings.ReplaceAll(phase, " ", ""), i))
			if err != nil {
				return err
			}
			outcome, err := powerCut(b, srv, phase)
			b.stop()
			if err != nil {
				outcome = "FAIL: " + err.Error()
				failures = append(failures, fmt.Sprintf("%s #%d: %v", phase, i, err))
			}
			counts[phase][outcome]++
			logf("power cut during %s #%d: %s", phase, i, outcome)
		}
		var parts []string
		for o, n := range counts[phase] {
			parts = append(parts, fmt.Sprintf("%d× %s", n, o))
		}
		result("power cuts during %s: %d runs: %s", phase, *cuts, strings.Join(parts, "; "))
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d power cut(s) left a box that did not come back: %v", len(failures), failures)
	}
	return nil
}

// powerCut runs one update, cuts the power at a random moment of phase,
// powers on again and checks the box.
func powerCut(b *box, srv *server, phase string) (string, error) {
	if err := b.boot(); err != nil {
		return "", err
	}
	if _, err := b.ready(); err != nil {
		return "", err
	}
	rate := "-1"
	var trigger string
	var spread time.Duration
	switch phase {
	case "download":
		// 1 MiB/s: the download lasts minutes, the cut lands inside it.
		rate, trigger, spread = "1048576", `update: a new release is available; fetching it`, 90*time.Second
	case "write":
		// The installer has checked the bundle and starts writing slot B.
		trigger, spread = `update: bundle verified`, 120*time.Second
	case "first boot":
		// From U-Boot choosing B to (often) after the commit.
		trigger, spread = `homenode: booting slot B`, 300*time.Second
	}
	if _, err := applyViaFeed(b, srv, "cuts", "next.rpb", rate); err != nil {
		return "", err
	}
	if _, err := b.vm.waitFor(trigger, *stepTimeout); err != nil {
		return "", err
	}
	delay := time.Duration(rng.Int64N(int64(spread)))
	time.Sleep(delay)
	b.vm.kill()
	logf("power cut %s into %s", delay.Round(time.Second), phase)
	// Power on again.
	if err := b.boot(); err != nil {
		return "", err
	}
	slot, err := b.vm.waitFor(`homenode: booting slot [AB]`, *stepTimeout)
	if err != nil {
		return "", err
	}
	if _, err := b.ready(); err != nil {
		return "", fmt.Errorf("not ready after the cut: %w", err)
	}
	st, err := b.status()
	if err != nil {
		return "", fmt.Errorf("the phone cannot reach the node after the cut: %w", err)
	}
	if err := b.checkKept(st); err != nil {
		return "", err
	}
	switch {
	case st.Version == *versionNext:
		return "ready on " + st.Version + " (the update went on)", nil
	case strings.HasSuffix(slot, "B"):
		return "", fmt.Errorf("booted B but runs %s", st.Version)
	case st.Update != nil && strings.Contains(st.Update.Last, "failed"):
		return "ready on " + st.Version + " (trial cut: rolled back)", nil
	default:
		return "ready on " + st.Version + " (update not installed)", nil
	}
}
