package routing

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/redpanda-p2p/homenode/node/wire"
)

// floodRequests is the size of TestRegistrationFloodLockout's flood: a
// few hundred in make test; REDPANDA_REGISTRATION_FLOOD=70000 reproduces
// issue 19's lock-out on a node that remembers before it checks.
func floodRequests(t *testing.T) int {
	if v := os.Getenv("REDPANDA_REGISTRATION_FLOOD"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("REDPANDA_REGISTRATION_FLOOD=%q: %v", v, err)
		}
		return n
	}
	return 600
}

// chainlessRequest is a validly signed request of a fresh identity with
// no chain, timestamped near the future edge of the replay window, so a
// node that remembered it would keep it for twice the window.
func chainlessRequest(t testing.TB, from host.Host, window time.Duration) []byte {
	t.Helper()
	id := newIdentity(t)
	r := &request{Identity: id.Public(), Timestamp: time.UnixMilli(time.Now().Add(window - 5*time.Second).UnixMilli()),
		Peer: from.ID(), Nonce: make([]byte, nonceSize)}
	rand.Read(r.Nonce)
	r.sign(id)
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// floodHost is an attacker's throwaway peer on source address ip: only
// what a registration needs (TCP, Noise, yamux), so that thousands of
// peer IDs a minute cost the test little.
func floodHost(ip string) (host.Host, error) {
	return libp2p.New(libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New), libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableMetrics(), libp2p.DisableIdentifyAddressDiscovery())
}

// sendOne sends b on a new stream and returns the node's answer, or
// false if there was none.
func sendOne(ctx context.Context, h host.Host, n *testNode, b []byte) (*response, bool) {
	s, err := h.NewStream(ctx, n.h.ID(), ProtocolID)
	if err != nil {
		return nil, false
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	if wire.WriteFrame(s, b) != nil {
		return nil, false
	}
	s.CloseWrite()
	rb, err := wire.ReadFrame(s, MaxResponseSize)
	if err != nil {
		return nil, false
	}
	resp, err := decodeResponse(rb)
	return resp, err == nil
}

// TestRegistrationFloodLockout is issue 19's registration lock-out:
// validly signed chainless requests, five per fresh peer ID, from 40
// source addresses, as fast as they go; then a new friend with a real
// ticket registers from another address and must be admitted. It logs
// the flood's figures (requests, answers by status, rate, log bytes).
func TestRegistrationFloodLockout(t *testing.T) {
	total := floodRequests(t)
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public()})
	const addrs, perPeer = 40, 5
	var sent atomic.Int64
	var mu sync.Mutex
	byStatus := map[string]int{}
	start := time.Now()
	var wg sync.WaitGroup
	for a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("127.0.0.%d", 2+a)
			for sent.Add(perPeer) <= int64(total) {
				h, err := floodHost(ip)
				if err != nil {
					t.Error(err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := h.Connect(ctx, n.info()); err == nil {
					for range perPeer {
						resp, ok := sendOne(ctx, h, n, chainlessRequest(t, h, DefaultReplayWindow))
						k := "no answer"
						if ok {
							k = resp.Status.String()
						}
						mu.Lock()
						byStatus[k]++
						mu.Unlock()
					}
				}
				cancel()
				h.Close()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	logBytes := len(n.logs.String())

	friend := newIdentity(t)
	chain := Chain{issue(t, f.owner, friend.Public(), 1, time.Now().Add(24*time.Hour))}
	c := newClient(t, "new friend", friend, chain)
	res, err := c.register(t, n, newChannelID(t))
	t.Logf("flood: %d requests from %d addresses in %s (%.0f/s); answers %v; node log %d bytes; new friend: %+v, %v",
		total, addrs, took.Round(time.Millisecond), float64(total)/took.Seconds(), byStatus, logBytes, res, err)
	if err != nil {
		t.Fatalf("a new friend was refused after the flood: %v", err)
	}
	if res.Hop != 1 {
		t.Fatalf("new friend at hop %d, want 1", res.Hop)
	}
}
