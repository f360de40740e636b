package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// consoleWriter writes to the terminal it was given and, when that
// terminal is hung up under it, opens the same terminal again and carries
// on. On first boot a getty starting on tty1 hangs the console up
// (TTYVHangup) just after the pairing console unit began writing to it:
// every later write to the old descriptor fails with EIO, and the QR code
// was gone until a restart. Opening tty1 needs the tty group
// (SupplementaryGroups= in homenode-pairing-console.service).
type consoleWriter struct {
	f    *os.File
	path string // the terminal's path ("" when it is not one)
}

// newConsoleWriter wraps f; if f is not a terminal device it is written
// to as it is.
func newConsoleWriter(f *os.File) *consoleWriter {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil || !(strings.HasPrefix(p, "/dev/tty") || strings.HasPrefix(p, "/dev/pts/")) {
		p = ""
	}
	return &consoleWriter{f: f, path: p}
}

func (w *consoleWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err == nil || w.path == "" || !errors.Is(err, syscall.EIO) {
		return n, err
	}
	f, oerr := os.OpenFile(w.path, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if oerr != nil {
		return n, fmt.Errorf("%w (opening %s again after a hangup: %v)", err, w.path, oerr)
	}
	if w.f != os.Stdout {
		w.f.Close()
	}
	w.f = f
	m, err := f.Write(b[n:])
	return n + m, err
}

var _ io.Writer = (*consoleWriter)(nil)
