// Command updatetest runs the A/B update scenarios of make update-test
// (image/update-test.sh builds what it needs): it boots the test image in
// qemu-system-aarch64 -M virt with Debian's U-Boot (the image's real boot
// chain, a hardware watchdog, reboots inside the same QEMU), plays the
// owner's phone with the real redpanda client through forwarded ports,
// serves the release feed and bundles the node downloads, cuts the power
// (kill -9 of QEMU) at random moments, and counts outcomes. It reads the
// guest only as a person could: the serial console (the journal is
// forwarded to it), the owner protocol, the QEMU monitor's block counters,
// and afterwards the disk's overlay. It is a test aid of make update-test
// only, and knows nothing of the node's internals.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

var (
	dir         = flag.String("dir", "dist/update-test", "artifacts (bundles, image) and work files")
	imagePath   = flag.String("image", "", "the test image of version N")
	redpanda    = flag.String("redpanda", "", "the redpanda client binary (the phone)")
	versionN    = flag.String("version-n", "9.0.0-1", "the image's version")
	versionNext = flag.String("version-next", "9.0.1-1", "the good update's version")
	only        = flag.String("only", "", "comma-separated scenarios (bootscript,commitfail,good,upload,never-ready,hang,data-late,refused,cuts); default all")
	cuts        = flag.Int("cuts", 4, "power cuts per phase (download, write, first boot)")
	seed        = flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the random moments")
	signingKey  = flag.String("key", "update/keys/dev-release.key", "the key the feeds are signed with (the image trusts it)")
	uboot       = flag.String("uboot", "/usr/lib/u-boot/qemu_arm64/u-boot.bin", "U-Boot for QEMU virt")
	stepTimeout = flag.Duration("timeout", 20*time.Minute, "longest wait for one step (emulation is slow)")
)

// running are the QEMU processes alive, killed if the driver is stopped.
var running sync.Map // *vm -> struct{}

func main() {
	flag.Parse()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		running.Range(func(k, _ any) bool { k.(*vm).kill(); return true })
		os.Exit(1)
	}()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "updatetest: FAIL:", err)
		os.Exit(1)
	}
}

var (
	rng     *rand.Rand
	results []string
)

func logf(format string, args ...any) {
	fmt.Printf("updatetest: [%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func result(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	results = append(results, s)
	logf("RESULT %s", s)
}

func run() error {
	rng = rand.New(rand.NewPCG(*seed, 1))
	logf("seed %d (rerun with -seed %d for the same moments)", *seed, *seed)
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	*dir = abs
	for _, p := range []*string{imagePath, redpanda, signingKey} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	srv, err := startServer(*dir)
	if err != nil {
		return err
	}
	want := func(name string) bool {
		return *only == "" || slices.Contains(strings.Split(*only, ","), name)
	}
	imgSize, _ := fileSize(*imagePath)
	bsize, _ := fileSize(filepath.Join(*dir, "next.rpb"))
	rootSize, _ := fileSize(filepath.Join(*dir, "root-next.ext4"))
	result("sizes: image %s (raw, sparse), root slot image %s, bundle %s (%.1f%% of the slot image)",
		mib(imgSize), mib(rootSize), mib(bsize), 100*float64(bsize)/float64(max(rootSize, 1)))

	var failed []string
	if want("bootscript") {
		logf("=== scenario bootscript")
		if err := scenarioBootScript(12); err != nil {
			failed = append(failed, "bootscript")
			result("bootscript: FAIL: %v", err)
		}
	}
	if want("commitfail") {
		logf("=== scenario commitfail")
		if err := scenarioCommitFails(); err != nil {
			failed = append(failed, "commitfail")
			result("commitfail: FAIL: %v", err)
		}
	}
	if rest := slices.DeleteFunc(strings.Split(*only, ","), func(s string) bool { return s == "bootscript" || s == "commitfail" }); *only != "" && len(rest) == 0 {
		return report(failed)
	}
	// A box on version N, paired, holding acknowledged messages: the
	// starting point of every scenario (a copy of its card and phone).
	base, err := prepare(srv)
	if err != nil {
		return fmt.Errorf("preparing the paired box: %w", err)
	}
	for _, sc := range []struct {
		name string
		fn   func(*box, *server) error
	}{
		// The fault scenarios first (the newest first), the long
		// power-cut series last.
		{"data-late", scenarioDataLate},
		{"never-ready", scenarioNeverReady},
		{"good", scenarioGood},
		{"hang", scenarioHang},
		{"refused", scenarioRefused},
		{"upload", scenarioUpload},
		{"cuts", scenarioCuts},
	} {
		if !want(sc.name) {
			continue
		}
		logf("=== scenario %s", sc.name)
		b, err := base.clone(sc.name)
		if err == nil {
			err = sc.fn(b, srv)
			b.stop()
		}
		if err != nil {
			logf("scenario %s FAILED: %v", sc.name, err)
			failed = append(failed, sc.name)
			result("%s: FAIL: %v", sc.name, err)
		}
	}
	return report(failed)
}

func report(failed []string) error {
	fmt.Println("\nupdatetest: results")
	for _, r := range results {
		fmt.Println("  " + r)
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %v", failed)
	}
	fmt.Println("updatetest: PASS")
	return nil
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// server serves the release feeds and bundles to the guest (at 10.0.2.2).
type server struct {
	port int
	dir  string
}

func startServer(dir string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{port: ln.Addr().(*net.TCPAddr).Port, dir: dir}
	go http.Serve(ln, http.FileServer(http.Dir(dir)))
	return s, nil
}

// feed writes a feed listing one bundle and returns its URL as the guest
// sees it.
func (s *server) feed(name, bundleFile string) (string, error) {
	kb, err := os.ReadFile(*signingKey)
	if err != nil {
		return "", err
	}
	k, err := bundle.ParsePrivateKey(kb)
	if err != nil {
		return "", err
	}
	p := filepath.Join(s.dir, bundleFile)
	b, f, err := bundle.OpenFile(p, bundle.NewKeyring(k.Public().(ed25519.PublicKey)))
	if err != nil {
		return "", err
	}
	sum, err := bundle.FileSHA256(f)
	f.Close()
	if err != nil {
		return "", err
	}
	size, _ := fileSize(p)
	fd := bundle.Feed{Format: 1, Issued: time.Now().UTC(), Expires: time.Now().Add(24 * time.Hour).UTC(),
		Releases: []bundle.Release{{Version: b.Manifest.Version, Compatible: b.Manifest.Compatible, URL: bundleFile, Size: size, SHA256: sum}}}
	signed, err := bundle.SignFeed(fd, []ed25519.PrivateKey{k}, nil)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "feed-"+name+".json"), signed, 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("http://10.0.2.2:%d/feed-%s.json", s.port, name), nil
}

// box is one card (a qcow2 overlay), its phone, and the QEMU running it.
type box struct {
	name    string
	work    string
	overlay string
	home    string // the phone's client directory
	p2p     int
	http    int
	vm      *vm
	peerID  string
	acked   int
}

// prepare boots a fresh card of version N, pairs the phone with it through
// the forwarded port, posts acknowledged messages, lets it commit slot A,
// then cuts the power: the card and phone every scenario starts from.
func prepare(srv *server) (*box, error) {
	work := filepath.Join(*dir, "work")
	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	b := &box{name: "base", work: work, overlay: filepath.Join(work, "base.qcow2"), home: filepath.Join(work, "phone-base")}
	size, _ := fileSize(*imagePath)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", *imagePath, b.overlay,
		strconv.FormatInt(size+1<<30, 10)).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	if err := b.boot(); err != nil {
		return nil, err
	}
	defer b.stop()
	uri, err := b.vm.waitFor(`RPPAIR1:[^" ]+`, *stepTimeout)
	if err != nil {
		return nil, err
	}
	uri = regexp.MustCompile(`RPPAIR1:[^" \r]+`).FindString(uri)
	logf("pairing URI %s", uri)
	u, err := provisioning.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	// The URI names the guest's addresses; the phone reaches the forwarded port.
	u.Addrs = []provisioning.Addr{{Transport: provisioning.TCP, AddrPort: netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", b.p2p))}}
	pid, _ := u.PeerID()
	b.peerID = pid.String()
	if _, err := b.phone("init"); err != nil {
		return nil, err
	}
	if _, err := b.phone("pair", u.String()); err != nil {
		return nil, err
	}
	if _, err := b.phone("channel", "new", "family"); err != nil {
		return nil, err
	}
	for i := range 10 {
		out, err := b.phone("send", "family", fmt.Sprintf("message %d before the update", i))
		if err != nil || !strings.Contains(out, "durable at") {
			return nil, fmt.Errorf("send %d: %v %s", i, err, out)
		}
		b.acked++
	}
	logf("paired (node %s), %d messages acknowledged", b.peerID, b.acked)
	if _, err := b.vm.waitFor(`update: routine`, *stepTimeout); err != nil {
		return nil, fmt.Errorf("slot A not committed: %w", err)
	}
	// Let the store apply its log before the cut (not needed, but the
	// scenarios should start from the same place each time).
	time.Sleep(10 * time.Second)
	return b, nil
}

// clone is a copy of the card (an overlay over the base's) and of the phone.
func (b *box) clone(name string) (*box, error) {
	c := &box{name: name, work: b.work, overlay: filepath.Join(b.work, name+".qcow2"), home: filepath.Join(b.work, "phone-"+name),
		peerID: b.peerID, acked: b.acked}
	os.Remove(c.overlay)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", b.overlay, c.overlay).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	os.RemoveAll(c.home)
	if out, err := exec.Command("cp", "-a", b.home, c.home).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp: %v: %s", err, out)
	}
	c.p2p, c.http = b.p2p, b.http // the phone knows the node at this port
	return c, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// boot powers the card on (a new QEMU process; the console log goes on).
func (b *box) boot() error {
	if b.p2p == 0 {
		b.p2p, b.http = freePort(), freePort()
	}
	v, err := startVM(b.work, b.name, b.overlay, b.p2p, b.http)
	if err != nil {
		return err
	}
	b.vm = v
	return nil
}

func (b *box) stop() {
	if b.vm != nil {
		b.vm.kill()
		b.vm = nil
	}
}

// phone runs the redpanda client as the owner.
//
// libp2p gives a dial to a loopback address 5 s, security handshake
// included, and an emulated guest on a loaded host can take longer: a
// command whose every dial failed (nothing reached the node; a message
// not taken stays in the phone, unacknowledged) is tried again, as a
// phone would.
func (b *box) phone(args ...string) (string, error) {
	for try := 1; ; try++ {
		out, err := b.phoneOnce(args...)
		if err == nil || try == 5 || !(strings.Contains(out, "all dials failed") || strings.Contains(out, "is unreachable")) {
			return out, err
		}
		logf("redpanda %s: the node did not answer the dial in time (try %d), again", strings.Join(args, " "), try)
		time.Sleep(5 * time.Second)
	}
}

func (b *box) phoneOnce(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *redpanda, append(args, "--home", b.home)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("redpanda %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// nodeStatus is what the phone sees of the node (owner protocol).
type nodeStatus struct {
	Node struct {
		PeerID string `json:"peer_id"`
	} `json:"node"`
	Version  string `json:"version"`
	Messages struct {
		Count int64 `json:"count"`
	} `json:"messages"`
	Channels []struct {
		ID       string `json:"id"`
		Messages int64  `json:"messages"`
	} `json:"channels"`
	Update *struct {
		Slot   string `json:"slot"`
		State  string `json:"state"`
		Last   string `json:"last"`
		Detail string `json:"detail"`
	} `json:"update"`
}

func (b *box) status() (nodeStatus, error) {
	var st nodeStatus
	var last error
	for range 5 {
		out, err := b.phone("node", "status", "--json")
		if err == nil {
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				return st, fmt.Errorf("node status: %v: %s", err, out)
			}
			return st, nil
		}
		last = err
		time.Sleep(10 * time.Second)
	}
	return st, last
}

// checkKept: the node answers as the same identity (the phone dials it by
// peer ID) and holds at least every message it acknowledged.
func (b *box) checkKept(st nodeStatus) error {
	if st.Node.PeerID != b.peerID {
		return fmt.Errorf("identity changed: %s, was %s", st.Node.PeerID, b.peerID)
	}
	var held int64
	for _, c := range st.Channels {
		held = max(held, c.Messages)
	}
	if held < int64(b.acked) {
		return fmt.Errorf("the channel holds %d messages, %d were acknowledged", held, b.acked)
	}
	return nil
}

// vm is one QEMU process.
type vm struct {
	cmd     *exec.Cmd
	logPath string
	mon     string
	offset  int64 // waits look from here on
	started time.Time
	exited  chan struct{}
}

func startVM(work, name, overlay string, p2p, httpPort int) (*vm, error) {
	v := &vm{logPath: filepath.Join(work, name+".console.log"), mon: filepath.Join(work, name+".monitor"), started: time.Now(), exited: make(chan struct{})}
	if st, err := os.Stat(v.logPath); err == nil {
		v.offset = st.Size()
	}
	os.Remove(v.mon)
	// acpi=off as in image/test.sh: the same board, its gpio-keys button
	// in the device tree (with ACPI on and U-Boot, Linux gets neither ACPI
	// tables nor the button).
	args := []string{"-M", "virt,acpi=off", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024", "-display", "none",
		"-bios", *uboot,
		"-chardev", "file,id=con,path=" + v.logPath + ",append=on", "-serial", "chardev:con",
		"-monitor", "unix:" + v.mon + ",server,nowait",
		"-device", "i6300esb", "-watchdog-action", "reset",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:4001,hostfwd=tcp:127.0.0.1:%d-:8080", p2p, httpPort),
		"-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci",
		// The disk last: U-Boot's virtio 0, Linux's vda.
		"-drive", "file=" + overlay + ",if=none,format=qcow2,id=disk0", "-device", "virtio-blk-device,drive=disk0"}
	v.cmd = exec.Command("qemu-system-aarch64", args...)
	v.cmd.Stdout, v.cmd.Stderr = os.Stderr, os.Stderr
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	running.Store(v, struct{}{})
	go func() { v.cmd.Wait(); running.Delete(v); close(v.exited) }()
	logf("QEMU %d on %s (console %s, node port %d)", v.cmd.Process.Pid, filepath.Base(overlay), v.logPath, p2p)
	return v, nil
}

// kill is the power cut: SIGKILL, nothing flushed.
func (v *vm) kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Signal(syscall.SIGKILL)
		<-v.exited
	}
}

// waitFor waits for a console line matching re after the mark, returns it
// and moves the mark past it.
func (v *vm) waitFor(re string, timeout time.Duration) (string, error) {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.Open(v.logPath)
		if err == nil {
			f.Seek(v.offset, 0)
			r := bufio.NewReader(f)
			pos := v.offset
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break // an unfinished line: read it again next time
				}
				pos += int64(len(line))
				if rx.MatchString(line) {
					f.Close()
					v.offset = pos
					return strings.TrimSpace(line), nil
				}
			}
			v.offset = pos
			f.Close()
		}
		select {
		case <-v.exited:
			return "", fmt.Errorf("QEMU exited while waiting for %q", re)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q on the console within %s (console %s)", re, timeout, v.logPath)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// monitor runs a QEMU monitor command.
func (v *vm) monitor(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", v.mon, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	c.Read(buf) // banner
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	time.Sleep(time.Second)
	n, _ := c.Read(buf)
	return string(buf[:n]), nil
}

// written is the bytes the guest has written to its disk (QEMU's
// counters, since this QEMU started).
func (v *vm) written() int64 {
	out, err := v.monitor("info blockstats")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`disk0:.*?wr_bytes=(\d+)`).FindStringSubmatch(strings.ReplaceAll(out, "\r\n", " "))
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// ready waits for homenode.service to be up on this boot.
func (b *box) ready() (time.Duration, error) {
	if _, err := b.vm.waitFor(`Started homenode\.service|Started redPanda home node\.`, *stepTimeout); err != nil {
		return 0, err
	}
	return time.Since(b.vm.started), nil
}

// slotBWritten reports whether the guest wrote anything into slot B: the
// ranges the card's overlay holds over the base card (qemu-img map).
func (b *box) slotBWritten() (bool, error) {
	out, err := exec.Command("qemu-img", "map", "-U", "--output=json", b.overlay).Output()
	if err != nil {
		return false, err
	}
	var ext []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Depth  int   `json:"depth"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(out, &ext); err != nil {
		return false, err
	}
	// The layout of image/build.sh: 4 MiB gap, 128 MiB boot, slot A,
	// slot B of the same size.
	slotStart, slotSize, err := slotBRange()
	if err != nil {
		return false, err
	}
	for _, e := range ext {
		if e.Depth == 0 && e.Data && e.Start < slotStart+slotSize && e.Start+e.Length > slotStart {
			return true, nil
		}
	}
	return false, nil
}

// slotBRange reads partition 3 of the image's MBR.
func slotBRange() (int64, int64, error) {
	f, err := os.Open(*imagePath)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return 0, 0, err
	}
	e := mbr[446+2*16 : 446+3*16]
	lba := int64(e[8]) | int64(e[9])<<8 | int64(e[10])<<16 | int64(e[11])<<24
	n := int64(e[12]) | int64(e[13])<<8 | int64(e[14])<<16 | int64(e[15])<<24
	if n == 0 {
		return 0, 0, errors.New("the image has no partition 3")
	}
	return lba * 512, n * 512, nil
}
