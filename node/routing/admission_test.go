package routing

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/wire"
)

// randomPeer is a peer ID an attacker makes for free.
func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pk, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chainlessFrame is chainlessRequest for a peer that has no host: the
// registry's own request path (serve) is driven directly, as the stream
// handler would, so that tens of thousands of requests take seconds.
func chainlessFrame(t testing.TB, p peer.ID, window time.Duration) []byte {
	t.Helper()
	id := newIdentity(t)
	r := &request{Identity: id.Public(), Timestamp: time.UnixMilli(time.Now().Add(window - 5*time.Second).UnixMilli()),
		Peer: p, Nonce: make([]byte, nonceSize)}
	rand.Read(r.Nonce)
	r.sign(id)
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := wire.WriteFrame(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRefusedRequestsAreNotRemembered: validly signed chainless requests
// on a node that serves only its owner's friends are refused and leave
// nothing in the replay cache (the cause of issue 19's lock-out), so a
// new friend registers afterwards. Each request comes from its own
// address, so no rate limit hides the replay cache. REDPANDA_REPLAY_FLOOD sets the flood
// size; 70000 passes the old global bound.
func TestRefusedRequestsAreNotRemembered(t *testing.T) {
	total := 3000
	if v := os.Getenv("REDPANDA_REPLAY_FLOOD"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	// REDPANDA_REPLAY_WINDOW widens the window so that a slow machine
	// still fits a 65,536-request flood in it.
	window := DefaultReplayWindow
	if v := os.Getenv("REDPANDA_REPLAY_WINDOW"); v != "" {
		var err error
		if window, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public(), RequestBurst: 5, ReplayWindow: window})
	refused := map[Status]int{}
	start := time.Now()
	var p peer.ID
	for i := range total {
		if i%5 == 0 {
			p = randomPeer(t)
		}
		resp, _, _ := n.r.serve(bytes.NewReader(chainlessFrame(t, p, window)), p, fmt.Sprintf("ip4:10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		refused[resp.Status]++
	}
	n.r.mu.Lock()
	remembered := n.r.seen.len()
	n.r.mu.Unlock()
	t.Logf("%d chainless requests in %s: %v; replay cache holds %d", total, time.Since(start).Round(time.Millisecond), refused, remembered)
	if remembered != 0 {
		t.Fatalf("the replay cache remembered %d refused requests", remembered)
	}
	friend := newIdentity(t)
	c := newClient(t, "new friend", friend, Chain{issue(t, f.owner, friend.Public(), 1, time.Now().Add(time.Hour))})
	if res := c.mustRegister(t, n, newChannelID(t)); res.Hop != 1 {
		t.Fatalf("new friend at hop %d", res.Hop)
	}
	n.r.mu.Lock()
	remembered = n.r.seen.len()
	n.r.mu.Unlock()
	if remembered != 1 {
		t.Fatalf("the friend's admitted request: replay cache holds %d, want 1", remembered)
	}
}

// TestAddressLimitSparesOtherAddresses: fresh peer IDs from one address
// share that address's bucket; a new peer elsewhere keeps its own, and a
// registered device is limited only per peer.
func TestAddressLimitSparesOtherAddresses(t *testing.T) {
	f := newFriends(t)
	n := startNode(t, "", Config{Owner: f.owner.Public()})
	rateLimited := 0
	for i := range addrRequestBurst + 30 {
		p := randomPeer(t)
		resp, _, _ := n.r.serve(bytes.NewReader(chainlessFrame(t, p, time.Minute)), p, "ip4:192.0.2.66")
		if resp.Status == StatusRateLimited {
			rateLimited++
		} else if i >= addrRequestBurst+5 {
			t.Fatalf("request %d from a drained address: %s %q", i, resp.Status, resp.Detail)
		}
	}
	if rateLimited < 25 {
		t.Fatalf("only %d of %d requests from one address were limited", rateLimited, addrRequestBurst+30)
	}
	p := randomPeer(t)
	if resp, _, _ := n.r.serve(bytes.NewReader(chainlessFrame(t, p, time.Minute)), p, "ip4:198.51.100.7"); resp.Status == StatusRateLimited {
		t.Fatalf("a peer on another address was limited: %q", resp.Detail)
	}
}

// TestReplayCacheBounded: past maxSeen the oldest entries go; nothing is
// refused for the cache being full.
func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache()
	until := time.Now().Add(time.Hour)
	var first, last [32]byte
	for i := range maxSeen + 1000 {
		var k [32]byte
		rand.Read(k[:])
		if i == 0 {
			first = k
		}
		last = k
		c.remember(k, until)
		if c.len() > maxSeen {
			t.Fatalf("%d entries, bound %d", c.len(), maxSeen)
		}
	}
	if c.has(first) || !c.has(last) {
		t.Fatalf("oldest kept %v, newest kept %v", c.has(first), c.has(last))
	}
	c.expire(until.Add(time.Second))
	if c.len() != 0 {
		t.Fatalf("%d entries after their window", c.len())
	}
	if len(c.order) > 1024 {
		t.Fatalf("order keeps %d forgotten keys", len(c.order))
	}
}
