package redpanda

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	gostrings "strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/nonetlink"
)

const pkgPath = "github.com/redpanda-p2p/homenode/mobile/redpanda"

// jvmTestEnv, set to 1, runs TestJavaPhones (make test and make mobile-test do).
const jvmTestEnv = "REDPANDA_JVM_TEST"

// repoRoot is the repository's top directory (tests run in the
// package's).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// gobindOut is what gobind made of this package, once for all tests.
var gobindOut struct {
	once   sync.Once
	dir    string // gobind's -outdir
	stderr string
	err    error
}

// scratch is a directory the tests share, removed by TestMain.
var scratch struct {
	once sync.Once
	dir  string
}

func scratchDir(t testing.TB) string {
	scratch.once.Do(func() {
		d, err := os.MkdirTemp("", "redpanda-mobile-test-")
		if err != nil {
			t.Fatal(err)
		}
		scratch.dir = d
	})
	return scratch.dir
}

// gobind runs the pinned gobind on this package for Java and
// Objective-C, as `make mobile` does.
func gobind(t testing.TB) string {
	t.Helper()
	gobindOut.once.Do(func() {
		gobindOut.dir = filepath.Join(scratchDir(t), "gobind")
		cmd := exec.Command("go", "run", "golang.org/x/mobile/cmd/gobind", "-lang=go,java,objc", "-outdir", gobindOut.dir, pkgPath)
		cmd.Dir = repoRoot(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		gobindOut.err = cmd.Run()
		gobindOut.stderr = stderr.String()
	})
	if gobindOut.err != nil {
		t.Fatalf("gobind: %v\n%s", gobindOut.err, gobindOut.stderr)
	}
	return gobindOut.dir
}

// TestBindingsComplete: gobind binds every exported function, method,
// field, constant and type of the package: it reports nothing (it
// reports what it cannot bind on stderr, "too many result values" and
// the like) and its output skips nothing (it writes "// skipped …" where
// it left something out).
func TestBindingsComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gobind over the package and its dependencies")
	}
	dir := gobind(t)
	if s := gostrings.TrimSpace(gobindOut.stderr); s != "" {
		t.Errorf("gobind reported:\n%s", s)
	}
	var files int
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for i, l := range gostrings.Split(string(b), "\n") {
			if gostrings.Contains(gostrings.ToLower(l), "skipped") {
				t.Errorf("%s:%d: %s", path, i+1, gostrings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// What an app uses must be there, in both languages.
	for file, want := range map[string][]string{
		"java/redpanda/Client.java":     {"public native SendResult send(String channelName, String text, long timeoutMs, Cancel cancel) throws Exception;", "public native void pause() throws Exception;", "public native Node pair("},
		"java/redpanda/Redpanda.java":   {"public static native Client open(Options opts) throws Exception;", "public static native long errorCode(java.lang.Exception err);"},
		"java/redpanda/Listener.java":   {"public void onMessage(Message m);", "public void onEvent(Event e);"},
		"src/gobind/Redpanda.objc.h":    {"- (RedpandaSendResult* _Nullable)send:(NSString* _Nullable)channelName text:(NSString* _Nullable)text timeoutMs:(int64_t)timeoutMs cancel:(RedpandaCancel* _Nullable)cancel error:(NSError* _Nullable* _Nullable)error;", "@protocol RedpandaListener <NSObject>"},
		"src/gobind/go_redpandamain.go": {"proxyredpanda_Client_Send"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Errorf("gobind wrote no %s: %v", file, err)
			continue
		}
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
	}
	t.Logf("%d generated files, nothing skipped", files)
}

// buildJNI builds the Java binding for this machine's JVM with
// mobile/jvm/build.sh and returns the directory holding libgojni.so and
// classes/.
func buildJNI(t testing.TB) string {
	t.Helper()
	out := filepath.Join(scratchDir(t), "jni")
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "mobile/jvm/build.sh"), gobind(t), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mobile/jvm/build.sh: %v\n%s", err, b)
	}
	return out
}

// homenode is `homenode run` on a fresh data directory: waiting for
// pairing, on loopback, its status page on an ephemeral port.
type homenode struct {
	cmd  *exec.Cmd
	url  string // its status page
	done chan struct{}
	logs bytes.Buffer // stderr, read after done
}

var statusPage = regexp.MustCompile(`msg="status page.*url=(http://[^ ]+)`)

func startHomenode(t *testing.T) *homenode {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "homenode")
	build := exec.Command("go", "build", "-o", bin, "./cmd/homenode")
	build.Dir = repoRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/homenode: %v\n%s", err, b)
	}
	dir := filepath.Join(t.TempDir(), "node")
	n := &homenode{done: make(chan struct{})}
	n.cmd = exec.Command(bin, "run", "--config", "/dev/null", "--data-dir", dir, "--admin-socket", filepath.Join(dir, "admin.sock"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--set", "upnp=false")
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.logs.WriteString(sc.Text() + "\n")
			if m := statusPage.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_ = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("homenode stderr:\n%s", n.logs.String())
		}
	})
	select {
	case n.url = <-urls:
	case <-n.done:
		t.Fatalf("homenode exited:\n%s", n.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("homenode logged no status page within 60 s")
	}
	return n
}

// pairingURI reads the node's pairing QR code as a phone's camera would:
// its status page's /pair.png decoded with zbarimg (the URI in
// /status.json when zbarimg is missing).
func (n *homenode) pairingURI(t *testing.T) string {
	t.Helper()
	get := func(path string) []byte {
		resp, err := http.Get(n.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", path, resp.Status, err)
		}
		return b
	}
	var st struct {
		Pairing struct{ URI string } `json:"pairing"`
	}
	if err := json.Unmarshal(get("status.json"), &st); err != nil || st.Pairing.URI == "" {
		t.Fatalf("status.json: no pairing URI (%v)", err)
	}
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Logf("no zbarimg (install zbar-tools): the pairing URI comes from /status.json")
		return st.Pairing.URI
	}
	uri := decodeQR(t, get("pair.png"))
	if uri != st.Pairing.URI {
		t.Fatalf("QR code %q, status.json %q", uri, st.Pairing.URI)
	}
	return uri
}

// decodeQR reads a PNG's QR code with zbarimg.
func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(f, png, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "-q", "--raw", f).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	return gostrings.TrimSpace(string(out))
}

// TestJavaPhones runs testdata/java/Phones.java, two phone apps on the
// generated Java binding, against a real homenode, on a JVM under a
// filter that makes listing network interfaces fail as on Android 11+.
func TestJavaPhones(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binding and a homenode, runs a JVM")
	}
	// Not in a plain `go test ./...`: the c-shared build recompiles every
	// dependency for a shared library (minutes on two busy cores). The
	// make targets install the JDK and gcc and set the variable.
	if os.Getenv(jvmTestEnv) == "" {
		t.Skipf("the JVM test runs with %s=1 (make test, make mobile-test)", jvmTestEnv)
	}
	for _, tool := range []string{"javac", "java", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s (make test-deps installs openjdk-17-jdk-headless and gcc)", tool)
		}
	}
	start := time.Now()
	node := startHomenode(t)
	uri := node.pairingURI(t)
	t.Logf("homenode built and waiting for pairing after %v", time.Since(start).Round(time.Millisecond))
	jni := buildJNI(t)
	t.Logf("JNI library and classes built after %v", time.Since(start).Round(time.Millisecond))
	classes := filepath.Join(jni, "classes")
	if b, err := exec.Command("javac", "-encoding", "UTF-8", "-cp", classes, "-d", classes, "testdata/java/Phones.java").CombinedOutput(); err != nil {
		t.Fatalf("javac Phones.java: %v\n%s", err, b)
	}
	java, _ := exec.LookPath("java")
	work := t.TempDir()
	cmd := nonetlink.Command(os.Args[0], java, "-Djava.library.path="+jni, "-cp", classes, "Phones", uri, work)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		err = errors.Join(errors.New("killed after 5 minutes"), <-done)
	}
	t.Logf("java Phones (done after %v):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil || !gostrings.Contains(out.String(), "\nPASS\n") {
		t.Fatalf("java Phones: %v", err)
	}
	// The QR code the app drew reads back as the key it shares.
	if _, err := exec.LookPath("zbarimg"); err == nil {
		png, err := os.ReadFile(filepath.Join(work, "read-key.png"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(filepath.Join(work, "read-key.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, png); got != string(key) {
			t.Fatalf("the app's QR code reads %q, want %q", got, key)
		}
	}
}
