package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
)

// echoProto is a test protocol: the handler reads everything the dialer
// sends, then answers with its SHA-256, so a transfer cut short by the relay
// cannot pass.
const echoProto = "/redpanda-test/sum/1.0.0"

func handleSum(h host.Host) {
	h.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		sum := sha256.New()
		if _, err := io.Copy(sum, s); err != nil {
			s.Reset()
			return
		}
		s.Write(sum.Sum(nil))
	})
}

// acl is a RelayACL the test can change while the relay runs.
type acl struct {
	mu    sync.Mutex
	allow map[peer.ID]bool
}

func (a *acl) set(p peer.ID, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.allow == nil {
		a.allow = map[peer.ID]bool{}
	}
	a.allow[p] = ok
}

func (a *acl) Allow(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.allow[p]
}

// relayNode is a reachable node offering the relay service.
func relayNode(t *testing.T, a *acl, lim RelayLimits) host.Host {
	return newHost(t, Config{
		ListenAddrs:       []string{loopTCP},
		RelayService:      true,
		RelayACL:          a.Allow,
		RelayLimits:       lim,
		ForceReachability: network.ReachabilityPublic,
	})
}

func circuitAddr(t *testing.T, relay host.Host, dest peer.ID) peer.AddrInfo {
	t.Helper()
	a, err := ma.NewMultiaddr(relay.Addrs()[0].String() + "/p2p/" + relay.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: dest, Addrs: []ma.Multiaddr{a}}
}

// sendThroughRelay sends n bytes from c to dest over the circuit and
// returns the checksum dest answered, or the error that cut it short.
func sendThroughRelay(ctx context.Context, t *testing.T, c host.Host, relay host.Host, dest peer.ID, n int) ([]byte, network.Conn, error) {
	t.Helper()
	if err := c.Connect(ctx, circuitAddr(t, relay, dest)); err != nil {
		return nil, nil, err
	}
	s, err := c.NewStream(network.WithAllowLimitedConn(ctx, "test"), dest, echoProto)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for left := n; left > 0; {
		k := min(left, len(buf))
		if _, err := s.Write(buf[:k]); err != nil {
			return nil, s.Conn(), err
		}
		left -= k
	}
	if err := s.CloseWrite(); err != nil {
		return nil, s.Conn(), err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return nil, s.Conn(), err
	}
	return got, s.Conn(), nil
}

func wantSum(n int) []byte {
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for left := n; left > 0; {
		k := min(left, len(buf))
		h.Write(buf[:k])
		left -= k
	}
	return h.Sum(nil)
}

// TestRelayedStreamBeyondDefaultCaps: a node behind a "NAT" (forced
// private) reserves a slot on a friend's relay from its static relay list,
// and a third host reaches it through /p2p-circuit with a stream carrying
// far more than libp2p's default 128 KiB cap. The 64 KiB row is the control:
// the same transfer under a small cap must be cut, so the test can fail.
func TestRelayedStreamBeyondDefaultCaps(t *testing.T) {
	const payload = 1 << 20
	tests := []struct {
		name   string
		limits RelayLimits
		wantOK bool
	}{
		{"raised caps carry 1 MiB", RelayLimits{}, true},
		{"64 KiB cap cuts the stream", RelayLimits{Data: 64 << 10}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var a acl
			r := relayNode(t, &a, tc.limits)
			natted := newHost(t, Config{
				ListenAddrs:       []string{loopTCP},
				StaticRelays:      []peer.AddrInfo{{ID: r.ID(), Addrs: r.Addrs()}},
				ForceReachability: network.ReachabilityPrivate,
			})
			a.set(natted.ID(), true)
			handleSum(natted)

			w, err := WatchReachability(natted)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			st, err := w.Wait(ctx, func(s ReachabilityStatus) bool { return slices.Contains(s.Relays, r.ID()) })
			if err != nil {
				t.Fatal(err)
			}
			if st.State() != "private" {
				t.Fatalf("natted node reachability %s, want private", st.State())
			}

			c := newHost(t, Config{ListenAddrs: []string{loopTCP}, Relay: true})
			got, conn, err := sendThroughRelay(ctx, t, c, r, natted.ID(), payload)
			if conn != nil {
				if _, err := conn.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
					t.Fatalf("stream went over %s, not through the relay", conn.RemoteMultiaddr())
				}
				lim := tc.limits
				lim.withDefaults()
				if d := conn.Stat().Extra[client.StatLimitData]; d != uint64(lim.Data) {
					t.Fatalf("relay announced data cap %v, want %d", d, lim.Data)
				}
				// The time cap is announced, not waited out: a test may not
				// sleep past libp2p's 2 minutes.
				if d := conn.Stat().Extra[client.StatLimitDuration]; d != lim.Duration {
					t.Fatalf("relay announced time cap %v, want %v", d, lim.Duration)
				}
			}
			ok := err == nil && string(got) == string(wantSum(payload))
			if ok != tc.wantOK {
				t.Fatalf("transfer of %d bytes ok=%v (err %v), want ok=%v", payload, ok, err, tc.wantOK)
			}
		})
	}
}

// TestRelayACL: only approved peers reserve, and a circuit to a peer whose
// approval was revoked is refused even though its reservation has not
// expired.
func TestRelayACL(t *testing.T) {
	tests := []struct {
		name       string
		approve    bool
		revoke     bool
		wantStatus pbv2.Status // 0: reservation granted
	}{
		{"approved peer reserves", true, false, 0},
		{"refused peer cannot reserve", false, false, pbv2.Status_PERMISSION_DENIED},
		{"revoked peer is not reachable", true, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var a acl
			r := relayNode(t, &a, RelayLimits{})
			n := newHost(t, Config{ListenAddrs: []string{loopTCP}, Relay: true})
			handleSum(n)
			a.set(n.ID(), tc.approve)

			rsvp, err := client.Reserve(ctx, n, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()})
			var rerr client.ReservationError
			switch {
			case tc.wantStatus == 0 && err != nil:
				t.Fatalf("reservation refused: %v", err)
			case tc.wantStatus != 0 && !errors.As(err, &rerr):
				t.Fatalf("reservation error %v, want a ReservationError", err)
			case tc.wantStatus != 0 && rerr.Status != tc.wantStatus:
				t.Fatalf("reservation status %v, want %v", rerr.Status, tc.wantStatus)
			case tc.wantStatus == 0 && rsvp.LimitData != uint64(64<<20):
				t.Fatalf("reservation data cap %d, want 64 MiB", rsvp.LimitData)
			}

			c := newHost(t, Config{ListenAddrs: []string{loopTCP}, Relay: true})
			if tc.revoke {
				a.set(n.ID(), false)
			}
			got, _, err := sendThroughRelay(ctx, t, c, r, n.ID(), 1000)
			reachable := err == nil && string(got) == string(wantSum(1000))
			if want := tc.approve && !tc.revoke; reachable != want {
				t.Fatalf("reachable through relay=%v (err %v), want %v", reachable, err, want)
			}
		})
	}
}

func TestReachabilityReportsForcedVerdict(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantState string
		serving   bool
	}{
		{"public relay", Config{RelayService: true, RelayACL: func(peer.ID) bool { return true },
			ForceReachability: network.ReachabilityPublic}, "public", true},
		{"public without relay service", Config{ForceReachability: network.ReachabilityPublic}, "public", false},
		{"private relay does not serve", Config{RelayService: true, RelayACL: func(peer.ID) bool { return true },
			ForceReachability: network.ReachabilityPrivate}, "private", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h := newHost(t, tc.cfg)
			w, err := WatchReachability(h)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			st, err := w.Wait(ctx, func(s ReachabilityStatus) bool {
				return s.State() == tc.wantState && s.RelayServing == tc.serving
			})
			if err != nil {
				t.Fatalf("%v (serving=%v)", err, st.RelayServing)
			}
		})
	}
}

func TestRelayConfigRejected(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"relay service without ACL", Config{RelayService: true}},
		{"negative relay data", Config{RelayLimits: RelayLimits{Data: -1}}},
		{"negative reservations", Config{RelayLimits: RelayLimits{Reservations: -1}}},
		{"negative relays", Config{Relays: -1}},
		{"bad forced reachability", Config{ForceReachability: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			tc.cfg.ListenAddrs = []string{loopTCP}
			tc.cfg.Logger = quiet
			h, err := New(tc.cfg)
			if err == nil {
				h.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
		})
	}
}

func TestRelaySourceMergesStaticAndSource(t *testing.T) {
	ids := make([]peer.AddrInfo, 5)
	for i := range ids {
		ids[i] = peer.AddrInfo{ID: peer.ID(rune('a' + i))}
	}
	source := func(ctx context.Context, num int) <-chan peer.AddrInfo {
		ch := make(chan peer.AddrInfo) // unbuffered: a stuck sender would hang
		go func() {
			defer close(ch)
			for _, ai := range ids[2:] {
				select {
				case ch <- ai:
				case <-ctx.Done():
					return
				}
			}
		}()
		return ch
	}
	tests := []struct {
		name   string
		static []peer.AddrInfo
		src    RelayPeerSource
		num    int
		want   int
	}{
		{"static only", ids[:2], nil, 4, 2},
		{"static fills num", ids[:2], source, 1, 1},
		{"static then source", ids[:2], source, 4, 4},
		{"source only", nil, source, 10, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []peer.ID
			for ai := range relaySource(tc.static, tc.src)(context.Background(), tc.num) {
				got = append(got, ai.ID)
			}
			if len(got) != tc.want {
				t.Fatalf("got %d candidates %v, want %d", len(got), got, tc.want)
			}
			for i, id := range got {
				if i < len(tc.static) && id != tc.static[i].ID {
					t.Fatalf("candidate %d is %s, want static %s first", i, id, tc.static[i].ID)
				}
			}
		})
	}
	if relaySource(nil, nil) != nil {
		t.Fatal("relaySource with nothing must be nil (no relay client)")
	}
}
