package testkit

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// NotifySocket makes a unix datagram socket playing systemd's notify
// socket and returns it with its path, for NOTIFY_SOCKET (set by the
// caller: in its own environment with t.Setenv, or in a child's). The
// path is under a short temporary directory, since a socket path has 108
// bytes and t.TempDir's can be longer. Both go at the end of the test.
func NotifySocket(t testing.TB) (*net.UnixConn, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}
