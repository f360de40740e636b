package testkit

import (
	"net"
	"strconv"
	"testing"
)

// FreePort is a loopback port free for both TCP and UDP at the moment of
// the call: a node listens with TCP and QUIC on one port, as on 4001, and
// a test that restarts it needs the same port again. (internal/fieldkit
// keeps its own: it may know no package of this module.)
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("testkit: no loopback port free for both TCP and UDP")
	return 0
}
