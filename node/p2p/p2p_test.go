package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

const (
	loopTCP  = "/ip4/127.0.0.1/tcp/0"
	loopQUIC = "/ip4/127.0.0.1/udp/0/quic-v1"
)

var quiet = slog.New(slog.DiscardHandler)

func newHost(t *testing.T, cfg Config) host.Host {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{loopTCP, loopQUIC}
	}
	cfg.Logger = quiet
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestIdentityPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, ListenAddrs: []string{loopTCP}, Logger: quiet}
	h1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id1 := h1.ID()
	h1.Close()

	path := filepath.Join(dir, IdentityFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %04o, want 0600", st.Mode().Perm())
	}
	before, _ := os.ReadFile(path)

	h2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.ID() != id1 {
		t.Fatalf("peer ID changed across restart: %s then %s", id1, h2.ID())
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("identity file rewritten on restart")
	}
	if _, err := peer.IDFromPrivateKey(h2.Peerstore().PrivKey(h2.ID())); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityRefusesBadFile(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpRaw, _ := crypto.MarshalPrivateKey(secp)
	ed, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	edRaw, _ := crypto.MarshalPrivateKey(ed)

	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    error
	}{
		{"garbage", []byte("not a key at all"), 0o600, ErrIdentityCorrupt},
		{"empty", nil, 0o600, ErrIdentityCorrupt},
		{"truncated", edRaw[:20], 0o600, ErrIdentityCorrupt},
		{"wrong key type", secpRaw, 0o600, ErrIdentityCorrupt},
		{"group readable", edRaw, 0o640, ErrIdentityPermissions},
		{"world readable", edRaw, 0o644, ErrIdentityPermissions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, IdentityFileName)
			if err := os.WriteFile(path, tc.content, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			h, err := New(Config{DataDir: dir, ListenAddrs: []string{loopTCP}, Logger: quiet})
			if err == nil {
				h.Close()
				t.Fatal("New accepted a bad identity file")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(path)) {
				t.Fatalf("error %q does not name the file", err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, tc.content) {
				t.Fatal("bad identity file was modified")
			}
		})
	}
}

func TestConnectOverEachTransport(t *testing.T) {
	tests := []struct {
		name, listen, transport, security string
	}{
		{"tcp", loopTCP, "tcp", "/noise"},
		{"quic", loopQUIC, "quic-v1", ""}, // QUIC carries TLS 1.3 itself
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newHost(t, Config{ListenAddrs: []string{tc.listen}})
			b := newHost(t, Config{ListenAddrs: []string{tc.listen}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatalf("connect: %v", err)
			}
			conns := a.Network().ConnsToPeer(b.ID())
			if len(conns) != 1 {
				t.Fatalf("%d conns, want 1", len(conns))
			}
			st := conns[0].ConnState()
			if st.Transport != tc.transport {
				t.Fatalf("transport %q, want %q", st.Transport, tc.transport)
			}
			if string(st.Security) != tc.security {
				t.Fatalf("security %q, want %q", st.Security, tc.security)
			}
			// A stream proves the connection is usable, not just counted.
			const proto = "/redpanda/test/echo"
			b.SetStreamHandler(proto, func(s network.Stream) {
				defer s.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(s, buf); err == nil {
					s.Write(buf)
				}
			})
			s, err := a.NewStream(ctx, b.ID(), proto)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Write([]byte("hello"))
			got := make([]byte, 5)
			if _, err := io.ReadFull(s, got); err != nil || string(got) != "hello" {
				t.Fatalf("echo %q, %v", got, err)
			}
		})
	}
}

// TestManyConnectionsFromOneAddress opens connections from many hosts that
// all share 127.0.0.1 (as phones share a carrier NAT address) with loopback
// held to the real per-address limits. The second case is the control: a
// limit of 8, libp2p's default, turns the rest away.
func TestManyConnectionsFromOneAddress(t *testing.T) {
	const dialers = 20
	tests := []struct {
		name         string
		connsPerIPv4 int
		want         int
	}{
		{"defaults accept all", 0, dialers},
		{"limit of 8 refuses the rest", 8, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := newHost(t, Config{
				ListenAddrs: []string{loopTCP},
				Limits:      Limits{ConnsPerIPv4: tc.connsPerIPv4, LimitLoopback: true},
			})
			info := peer.AddrInfo{ID: target.ID(), Addrs: target.Addrs()}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			accepted := 0
			for i := 0; i < dialers; i++ {
				d := newHost(t, Config{ListenAddrs: []string{loopTCP}})
				if err := d.Connect(ctx, info); err == nil {
					accepted++
				}
			}
			if accepted != tc.want {
				t.Fatalf("%d of %d connections accepted, want %d", accepted, dialers, tc.want)
			}
			if n := len(target.Network().Peers()); n != tc.want {
				t.Fatalf("target sees %d peers, want %d", n, tc.want)
			}
		})
	}
}

func TestSystemLimitIsConfigured(t *testing.T) {
	tests := []struct {
		name           string
		limits         Limits
		conns, inbound int
		memory         int64
		fd             int
	}{
		{"defaults", Limits{}, 2560, 2560, 2560 * StreamReserve, 4096},
		{"explicit", Limits{Conns: 3000, ConnsInbound: 2800}, 3000, 2800, 3000 * StreamReserve, 4096},
		// 5,000 idle clients need their streams' yamux windows accounted
		// and a descriptor each: raising Conns alone must be enough.
		{"6,000 conns", Limits{Conns: 6000}, 6000, 6000, 6000 * StreamReserve, 7024},
		{"small, explicit memory", Limits{Conns: 100, Memory: 64 << 20, FD: 200}, 100, 100, 64 << 20, 200},
		{"small", Limits{Conns: 100}, 100, 100, 512 << 20, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, Config{ListenAddrs: []string{loopTCP}, Limits: tc.limits})
			lim, err := SystemLimit(h)
			if err != nil {
				t.Fatal(err)
			}
			if got := lim.GetConnTotalLimit(); got != tc.conns {
				t.Fatalf("total conn limit %d, want %d", got, tc.conns)
			}
			if got := lim.GetConnLimit(network.DirInbound); got != tc.inbound {
				t.Fatalf("inbound conn limit %d, want %d", got, tc.inbound)
			}
			if got := lim.GetMemoryLimit(); got != tc.memory {
				t.Fatalf("memory limit %d, want %d", got, tc.memory)
			}
			if got := lim.GetFDLimit(); got != tc.fd {
				t.Fatalf("FD limit %d, want %d", got, tc.fd)
			}
			// A protocol every client holds a stream of (sync) is not held
			// below the system limits by libp2p's scaled per-protocol default.
			err = h.Network().ResourceManager().ViewProtocol("/test/every-client/1", func(s network.ProtocolScope) error {
				pl := s.(rcmgr.ResourceScopeLimiter).Limit()
				if got := pl.GetStreamLimit(network.DirInbound); got < tc.conns {
					t.Errorf("inbound streams per protocol %d, want at least the %d connections", got, tc.conns)
				}
				if got := pl.GetMemoryLimit(); got != tc.memory {
					t.Errorf("memory per protocol %d, want the system's %d", got, tc.memory)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestProtectedPeerSurvivesTrim(t *testing.T) {
	target := newHost(t, Config{
		ListenAddrs: []string{loopTCP},
		ConnMgr:     ConnMgr{LowWater: 1, HighWater: 3, GracePeriod: 10 * time.Millisecond},
	})
	info := peer.AddrInfo{ID: target.ID(), Addrs: target.Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var peers []peer.ID
	for i := 0; i < 5; i++ {
		d := newHost(t, Config{ListenAddrs: []string{loopTCP}})
		if err := d.Connect(ctx, info); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, d.ID())
	}
	Protect(target, peers[0], TagRegistered)
	Protect(target, peers[1], TagSyncing)
	if !IsProtected(target, peers[0], TagRegistered) {
		t.Fatal("not protected")
	}
	// libp2p trims the unprotected candidates down to LowWater (1), so two
	// of the three unprotected peers must go. The loop is bounded by ctx.
	for ctx.Err() == nil {
		target.ConnManager().TrimOpenConns(ctx)
		unprotected := 0
		for _, p := range peers[2:] {
			if target.Network().Connectedness(p) == network.Connected {
				unprotected++
			}
		}
		if unprotected <= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatal("connection manager never trimmed the unprotected peers")
	}
	for _, p := range peers[:2] {
		if target.Network().Connectedness(p) != network.Connected {
			t.Fatalf("protected peer %s was trimmed", p)
		}
	}
	if Unprotect(target, peers[0], TagRegistered) {
		t.Fatal("peer still protected after removing its only tag")
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{}},
		{"low above high", Config{DataDir: "x", ConnMgr: ConnMgr{LowWater: 10, HighWater: 5}}},
		{"negative limit", Config{DataDir: "x", Limits: Limits{Conns: -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
		})
	}
}

// TestOptionsApplied: Config.Options reach libp2p after the package's own
// (the simulation's network comes in this way).
func TestOptionsApplied(t *testing.T) {
	const pingID = "/ipfs/ping/1.0.0"
	plain := newHost(t, Config{ListenAddrs: []string{loopTCP}})
	if !slices.Contains(plain.Mux().Protocols(), pingID) {
		t.Fatalf("a host without options does not serve %s: %v", pingID, plain.Mux().Protocols())
	}
	h := newHost(t, Config{ListenAddrs: []string{loopTCP}, Options: []libp2p.Option{libp2p.Ping(false)}})
	if slices.Contains(h.Mux().Protocols(), pingID) {
		t.Fatalf("libp2p.Ping(false) given in Options, yet the host serves %s", pingID)
	}
}
