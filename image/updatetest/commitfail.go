package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// scenarioCommitFails: a freshly flashed card whose commit step fails at
// every boot (the test image homenode-commit-fails.img: its
// homenode-commit.service runs /bin/false) must boot once and stay up, not
// reboot for ever: homenode-commit.service starts homenode-fallback.service,
// whose check (`homenode update fallback`) finds no trial and skips the
// reboot; the node starts, and its status page says the system was not
// committed. Powered on a second time, the same: no loop across boots.
func scenarioCommitFails() error {
	img := filepath.Join(*dir, "homenode-commit-fails.img")
	if _, err := os.Stat(img); err != nil {
		return fmt.Errorf("the test image: %w (image/update-test.sh builds it)", err)
	}
	work := filepath.Join(*dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	b := &box{name: "commit-fails", work: work, overlay: filepath.Join(work, "commit-fails.qcow2")}
	os.Remove(b.overlay)
	os.Remove(filepath.Join(work, b.name+".console.log"))
	size, _ := fileSize(img)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img, b.overlay,
		strconv.FormatInt(size+1<<30, 10)).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	defer b.stop()
	for power := 1; power <= 2; power++ {
		if err := b.boot(); err != nil {
			return err
		}
		start := b.vm.offset
		if _, err := b.vm.waitFor(`homenode: booting slot A`, *stepTimeout); err != nil {
			return err
		}
		// The commit step runs beside the node (not after it), so its
		// failure and the fallback's decision may come before or after
		// the node's ready: each is looked for from the boot on.
		boot := b.vm.offset
		if _, err := b.vm.waitFor(`homenode-commit\.service: Failed`, *stepTimeout); err != nil {
			return err
		}
		line, err := b.vm.waitFor(`update fallback: the commit step failed; staying up`, *stepTimeout)
		if err != nil {
			return err
		}
		b.vm.offset = boot
		if _, err := b.ready(); err != nil {
			return err
		}
		logf("power-on %d: %s", power, line)
		state, detail, err := b.pageUpdateState(*stepTimeout)
		if err != nil {
			return fmt.Errorf("power-on %d: %w", power, err)
		}
		logf("power-on %d: status page: update %q: %s", power, state, detail)
		// Everything above happened on one boot: the console since
		// power-on shows U-Boot choosing a slot once.
		console, err := os.ReadFile(b.vm.logPath)
		if err != nil {
			return err
		}
		if n := len(regexp.MustCompile(`homenode: booting slot`).FindAll(console[start:], -1)); n != 1 {
			return fmt.Errorf("power-on %d: %d boots since power-on, want 1 (the failed commit step rebooted the board)", power, n)
		}
		b.stop()
	}
	result("commit step fails on a new card (test image, homenode-commit.service = /bin/false): homenode-fallback.service did not reboot it, 1 boot per power-on on 2 power-ons, the node came up and its status page said \"not committed\"")
	return nil
}

// pageUpdateState polls the status page (status.json through the
// forwarded port) until its update section says "not committed".
func (b *box) pageUpdateState(timeout time.Duration) (string, string, error) {
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("http://127.0.0.1:%d/status.json", b.http)
	var last string
	for time.Now().Before(deadline) {
		var st nodeStatus
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			last = err.Error()
		case st.Update == nil:
			last = "no update section"
		case st.Update.State == "not committed":
			return st.Update.State, st.Update.Detail, nil
		default:
			last = "update state " + st.Update.State
		}
		time.Sleep(5 * time.Second)
	}
	return "", "", fmt.Errorf("the status page never said \"not committed\" (last: %s)", last)
}
