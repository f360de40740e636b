package update

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redpanda-p2p/homenode/update/bundle"
)

// DefaultTries is how many boots a new system gets to become healthy: one
// (the "one-try boot"); a reset or a power cut during it counts.
const DefaultTries = 1

// MaxTries bounds InstallOptions.Tries (the script counts in one hex digit).
const MaxTries = 9

// writeChunk is the size of each write to the slot.
const writeChunk = 1 << 20

// InstallOptions tune Install.
type InstallOptions struct {
	// AllowOlder installs an older version (the owner forces a
	// downgrade); AllowSame reinstalls the running one.
	AllowOlder, AllowSame bool
	// Tries is how many boots the new system gets; DefaultTries when 0.
	Tries int
	// Source says where the bundle came from (file, feed, phone).
	Source string
	// Progress, when set, is called as the installation advances (it is
	// also written to progress.json).
	Progress func(Progress)
	Logger   *slog.Logger
}

// Installed says what Install put where.
type Installed struct {
	Slot     Slot
	Manifest bundle.Manifest
	// Written is how many bytes went to the slot.
	Written int64
}

// Install checks the bundle at path (signature, board, version, payload),
// then writes its image to the inactive slot and makes that slot the next
// boot's, for Tries boots. Nothing is written before the checks pass; the
// slot is taken out of the boot order before it is written and put back
// only once it reads back as the signed image, so a power cut at any
// moment leaves the running system the one that boots. The caller
// reboots.
func (s *System) Install(path string, o InstallOptions) (Installed, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Tries == 0 {
		o.Tries = DefaultTries
	}
	if o.Tries < 1 || o.Tries > MaxTries {
		return Installed{}, fmt.Errorf("update: tries %d, want 1 to %d", o.Tries, MaxTries)
	}
	unlock, err := s.lock()
	if err != nil {
		return Installed{}, err
	}
	defer unlock()

	p := Progress{Phase: PhaseVerifying, Started: time.Now().UTC()}
	report := func() {
		if o.Progress != nil {
			o.Progress(p)
		}
		if err := s.State.WriteProgress(p); err != nil {
			log.Warn("update: progress not written", "err", err)
		}
	}
	fail := func(phase string, err error) (Installed, error) {
		p.Phase, p.Error = phase, err.Error()
		report()
		return Installed{}, err
	}
	report()

	b, f, err := bundle.OpenFile(path, s.Keyring)
	if err != nil {
		return fail(PhaseRefused, err)
	}
	defer f.Close()
	m := b.Manifest
	p.Version = m.Version
	if err := b.Check(bundle.Policy{Compatible: s.Compatible, Running: s.Version, AllowOlder: o.AllowOlder, AllowSame: o.AllowSame}); err != nil {
		return fail(PhaseRefused, err)
	}
	target := s.Current.Other()
	dev := s.Slots[target]
	if size, err := deviceSize(dev); err != nil {
		return fail(PhaseFailed, err)
	} else if m.Image.Size > size {
		return fail(PhaseRefused, fmt.Errorf("%w: image %d bytes, slot %s (%s) %d bytes", ErrTooLarge, m.Image.Size, target, dev, size))
	}
	p.Total = m.Payload.Size
	last := time.Now()
	if err := b.VerifyPayload(func(n int64) {
		p.Done = n
		if time.Since(last) > time.Second {
			last = time.Now()
			report()
		}
	}); err != nil {
		return fail(PhaseRefused, err)
	}
	log.Info("update: bundle verified", "version", m.Version, "signed_by", b.SignedBy, "slot", target)

	// The target slot leaves the boot order before its first byte changes.
	boot, prev, err := s.LoadBoot()
	if err != nil && prev.Env != nil {
		return fail(PhaseFailed, err)
	}
	boot.Order = slices.DeleteFunc(boot.Order, func(x Slot) bool { return x == target })
	if !slices.Contains(boot.Order, s.Current) {
		boot.Order = append([]Slot{s.Current}, boot.Order...)
	}
	boot.Left[target] = 0
	boot.Trial = ""
	if boot.Left[s.Current] == 0 {
		boot.Left[s.Current] = CommittedTries
	}
	if prev, err = s.saveBoot(prev, boot); err != nil {
		return fail(PhaseFailed, err)
	}
	rec, err := s.State.ReadRecord()
	if err != nil {
		log.Warn("update: state record unreadable; starting a new one", "err", err)
		rec = Record{}
	}
	rec.Trial = nil
	if rec.Slots == nil {
		rec.Slots = map[Slot]string{}
	}
	rec.Slots[s.Current] = s.Version
	delete(rec.Slots, target)
	if err := s.State.WriteRecord(rec); err != nil {
		return fail(PhaseFailed, err)
	}

	p.Phase, p.Done, p.Total = PhaseWriting, 0, m.Image.Size
	report()
	written, err := writeSlot(dev, b, func(n int64) {
		p.Done = n
		if time.Since(last) > time.Second {
			last = time.Now()
			report()
		}
	})
	if err != nil {
		return fail(PhaseFailed, fmt.Errorf("update: writing slot %s: %w", target, err))
	}
	p.Phase, p.Done = PhaseChecking, 0
	report()
	if err := checkSlot(dev, m.Image, func(n int64) {
		p.Done = n
		if time.Since(last) > time.Second {
			last = time.Now()
			report()
		}
	}); err != nil {
		return fail(PhaseFailed, fmt.Errorf("update: slot %s does not read back as written: %w", target, err))
	}

	rec.Trial = &Trial{Slot: target, Version: m.Version, From: s.Version, Tries: o.Tries, Installed: time.Now().UTC(), Source: o.Source}
	rec.Slots[target] = m.Version
	if err := s.State.WriteRecord(rec); err != nil {
		return fail(PhaseFailed, err)
	}
	boot.Order = []Slot{target, s.Current}
	boot.Left[target] = o.Tries
	boot.Left[s.Current] = CommittedTries
	boot.Trial = target
	if _, err := s.saveBoot(prev, boot); err != nil {
		return fail(PhaseFailed, err)
	}
	p.Phase, p.Done = PhaseInstalled, p.Total
	report()
	log.Info("update: installed; the next boot tries it", "version", m.Version, "slot", target, "tries", o.Tries, "written", written)
	return Installed{Slot: target, Manifest: m, Written: written}, nil
}

// lock takes the installation lock (a file in the state directory).
func (s *System) lock() (func(), error) {
	if err := s.State.Ensure(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(string(s.State), "install.lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("update: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// deviceSize is the size of a block device or file.
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("update: size of %s: %w", path, err)
	}
	return n, nil
}

// writeSlot streams the bundle's image into dev. A block device is opened
// exclusively: it fails if the partition is mounted (the running slot).
func writeSlot(dev string, b *bundle.Bundle, progress func(int64)) (int64, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	img, err := b.Image()
	if err != nil {
		return 0, err
	}
	defer img.Close()
	buf := make([]byte, writeChunk)
	var n int64
	for {
		k, rerr := io.ReadFull(img, buf)
		if k > 0 {
			if _, err := f.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			progress(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return n, rerr
		}
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	// Drop the written pages from the cache so the check reads the card.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return n, f.Close()
}

// checkSlot reads the first img.Size bytes of dev back and compares their
// SHA-256 with the signed one.
func checkSlot(dev string, img bundle.Blob, progress func(int64)) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), 0, img.Size, unix.FADV_DONTNEED)
	h := sha256.New()
	var n int64
	buf := make([]byte, writeChunk)
	for n < img.Size {
		k, err := f.Read(buf[:min(int64(len(buf)), img.Size-n)])
		h.Write(buf[:k])
		n += int64(k)
		progress(n)
		if err != nil {
			return err
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != img.SHA256 {
		return errors.New("SHA-256 differs")
	}
	return nil
}
