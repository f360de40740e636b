package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleWriterSurvivesHangup: a terminal hung up under the writer (as
// a getty starting on tty1 does) makes writes to the old descriptor fail
// with EIO; the console writer opens the terminal again and the text
// arrives. A real pseudo-terminal, hung up with TIOCVHANGUP (root only).
func TestConsoleWriterSurvivesHangup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hanging up a terminal needs root")
	}
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("terminal got %q, want %q", s, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("terminal got nothing, want %q", want)
		}
	}

	w := newConsoleWriter(slave)
	if w.path != path {
		t.Fatalf("terminal path %q, want %q", w.path, path)
	}
	if _, err := w.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	expect("before")
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCVHANGUP, 0); err != nil {
		t.Skipf("TIOCVHANGUP: %v", err)
	}
	// The scenario is real: the old descriptor is dead.
	if _, err := slave.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write after hangup: %v, want EIO", err)
	}
	if _, err := w.Write([]byte("after")); err != nil {
		t.Fatalf("console writer after hangup: %v", err)
	}
	expect("after")
}

// TestConsoleWriterNotATerminal: a file is written as it is; its errors
// are not retried.
func TestConsoleWriterNotATerminal(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	w := newConsoleWriter(f)
	if w.path != "" {
		t.Fatalf("a plain file taken for a terminal: %q", w.path)
	}
	f.Close()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
}
