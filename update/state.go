package update

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Files in the state directory (on the data partition, beside the node's
// identity, so they survive every update):
//
//	state.json     what was installed and how it ended (written by the
//	               installer and the commit step, read by the daemon)
//	progress.json  the installer's progress, for the status page
//	request.json   the daemon asks the installer to install a bundle
//	spool/         bundles downloaded or received from the owner's phone
const (
	stateFile    = "state.json"
	progressFile = "progress.json"
	requestFile  = "request.json"
	// SpoolDir holds bundles on their way to the installer.
	SpoolDir = "spool"
)

// Record is state.json.
type Record struct {
	// Trial is the update installed and not yet committed or given up.
	Trial *Trial `json:"trial,omitempty"`
	// Last is the outcome of the last update (the owner is told once).
	Last *Result `json:"last,omitempty"`
	// Slots are the versions installed in each slot, as far as known.
	Slots map[Slot]string `json:"slots,omitempty"`
	// CommitFailed is the last failure of the commit step on a boot
	// that was not a trial (the board stayed up); a commit clears it.
	CommitFailed *CommitFailure `json:"commit_failed,omitempty"`
}

// Trial is an installed update waiting for its first healthy boot.
type Trial struct {
	Slot      Slot      `json:"slot"`
	Version   string    `json:"version"`
	From      string    `json:"from"` // the version that installed it
	Tries     int       `json:"tries"`
	Installed time.Time `json:"installed"`
	Source    string    `json:"source,omitempty"` // file, feed, phone
}

// Outcomes of an update.
const (
	Updated = "updated"
	Failed  = "failed"
)

// Result is how an update ended.
type Result struct {
	ID      string    `json:"id"` // unique, so the owner is told once
	Outcome string    `json:"outcome"`
	Version string    `json:"version"` // the version installed
	From    string    `json:"from"`    // the version before
	Running string    `json:"running"` // the version running now
	Tries   int       `json:"tries"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
}

// Message is the sentence the owner reads.
func (r Result) Message() string {
	if r.Outcome == Updated {
		return fmt.Sprintf("updated to %s (from %s)", r.Version, r.From)
	}
	tries := "1 try"
	if r.Tries != 1 {
		tries = fmt.Sprintf("%d tries", r.Tries)
	}
	msg := fmt.Sprintf("update to %s failed after %s, back on %s", r.Version, tries, r.Running)
	if r.Reason != "" {
		msg += ": " + r.Reason
	}
	return msg
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Progress is progress.json.
type Progress struct {
	Phase   string    `json:"phase"` // see the Phase constants
	Version string    `json:"version,omitempty"`
	Done    int64     `json:"done"`  // bytes of this phase
	Total   int64     `json:"total"` // bytes of this phase
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Error   string    `json:"error,omitempty"`
}

// Phases of an installation.
const (
	PhaseVerifying = "verifying"
	PhaseWriting   = "writing"
	PhaseChecking  = "checking"
	PhaseRebooting = "rebooting"
	PhaseInstalled = "installed" // waiting for a reboot
	PhaseRefused   = "refused"
	PhaseFailed    = "failed"
)

// Percent is Done of Total, 0 to 100.
func (p Progress) Percent() int {
	if p.Total <= 0 {
		return 0
	}
	return int(p.Done * 100 / p.Total)
}

// Request is request.json: the daemon, which may not write the disk, asks
// the installer (homenode-update.service) to install a spooled bundle.
type Request struct {
	Bundle     string `json:"bundle"` // file name inside the spool
	AllowOlder bool   `json:"allow_older,omitempty"`
	AllowSame  bool   `json:"allow_same,omitempty"`
	Tries      int    `json:"tries,omitempty"`
	Source     string `json:"source,omitempty"`
}

// Dir is the state directory.
type Dir string

// ReadRecord reads state.json; a missing file is an empty record.
func (d Dir) ReadRecord() (Record, error) {
	var r Record
	err := d.readJSON(stateFile, &r)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil
	}
	return r, err
}

// WriteRecord replaces state.json durably.
func (d Dir) WriteRecord(r Record) error { return d.writeJSON(stateFile, r) }

// ReadProgress reads progress.json; ok is false when there is none.
func (d Dir) ReadProgress() (p Progress, ok bool, err error) {
	err = d.readJSON(progressFile, &p)
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil
	}
	return p, err == nil, err
}

// WriteProgress replaces progress.json (not synced: it is for display).
func (d Dir) WriteProgress(p Progress) error {
	p.Updated = time.Now().UTC()
	return d.write(progressFile, p, false)
}

// ClearProgress removes progress.json.
func (d Dir) ClearProgress() error {
	err := os.Remove(filepath.Join(string(d), progressFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// WriteRequest asks for an installation.
func (d Dir) WriteRequest(r Request) error { return d.writeJSON(requestFile, r) }

// TakeRequest reads and removes request.json; ok is false when there is
// none.
func (d Dir) TakeRequest() (r Request, ok bool, err error) {
	err = d.readJSON(requestFile, &r)
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if rerr := os.Remove(filepath.Join(string(d), requestFile)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return r, false, rerr
	}
	return r, err == nil, err
}

// Spool is the spool directory's path.
func (d Dir) Spool() string { return filepath.Join(string(d), SpoolDir) }

// SpoolFile resolves a name inside the spool, refusing anything that
// would leave it.
func (d Dir) SpoolFile(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("update: %q is not a file name in the spool", name)
	}
	return filepath.Join(d.Spool(), name), nil
}

func (d Dir) readJSON(name string, v any) error {
	b, err := os.ReadFile(filepath.Join(string(d), name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("update: %s: %w", name, err)
	}
	return nil
}

func (d Dir) writeJSON(name string, v any) error { return d.write(name, v, true) }

// write replaces name atomically (temporary file, rename); durable makes
// it survive a power cut once write returns. Files are created readable by
// the directory's owner: the daemon reads what the installer writes.
func (d Dir) write(name string, v any, durable bool) error {
	if err := d.Ensure(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(string(d), name)
	tmp, err := os.CreateTemp(string(d), "."+name+".*")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("update: write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	d.chownLikeDir(tmp)
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("update: sync %s: %w", name, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if durable {
		return syncDir(string(d))
	}
	return nil
}

// Ensure makes the directory and its spool (owned like the directory's
// parent, the node's data directory, when run as root).
func (d Dir) Ensure() error {
	for _, p := range []string{string(d), d.Spool()} {
		if err := os.Mkdir(p, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("update: %w", err)
		}
	}
	if os.Geteuid() == 0 {
		if st, err := os.Stat(filepath.Dir(string(d))); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				os.Lchown(string(d), int(sys.Uid), int(sys.Gid))
				os.Lchown(d.Spool(), int(sys.Uid), int(sys.Gid))
			}
		}
	}
	return nil
}

func (d Dir) chownLikeDir(f *os.File) {
	if os.Geteuid() != 0 {
		return
	}
	if st, err := os.Stat(string(d)); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			f.Chown(int(sys.Uid), int(sys.Gid))
		}
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: sync %s: %w", dir, err)
	}
	return nil
}

// TrialBoot reports whether the running system is an update on trial: the
// kernel command line (cmdline, normally /proc/cmdline) names the slot the
// state directory's record says is on trial. Readable without access to
// the disk, so the daemon can ask.
func TrialBoot(cmdline string, d Dir) bool {
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return false
	}
	rec, err := d.ReadRecord()
	if err != nil || rec.Trial == nil {
		return false
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, cmdlineSlot); ok {
			return Slot(v) == rec.Trial.Slot
		}
	}
	return false
}
