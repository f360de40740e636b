package provisioning

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/redpanda-p2p/homenode/node/store"
)

// newHostAt is a phone (or an attacker) whose connections come from ip, a
// loopback alias: libp2p's TCP transport dials from its listen address.
func newHostAt(t testing.TB, ip string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// remoteIP is the source address n sees for p.
func remoteIP(t testing.TB, n *testNode, p peer.ID) string {
	t.Helper()
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil {
			return ip.String()
		}
	}
	return ""
}

// holdSession opens a pairing session, reads the challenge and never
// answers: what the attacker of issue 19 did with four sessions reopened
// every 30 s.
func holdSession(t *testing.T, from host.Host, n *testNode) network.Stream {
	t.Helper()
	s, _ := rawSession(t, from, n)
	return s
}

// TestHeldSessionsDoNotBlockPairing: sessions that read the challenge and
// never answer, from other addresses and from the phone's own, take no
// slot: the phone pairs at once, and an address keeps at most
// maxOpenPerAddr such sessions (the oldest are reset).
func TestHeldSessionsDoNotBlockPairing(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	var held []network.Stream
	for i := range 8 {
		a := newHostAt(t, fmt.Sprintf("127.0.0.%d", 2+i%4))
		held = append(held, holdSession(t, a, n))
	}
	if ip := remoteIP(t, n, held[0].Conn().LocalPeer()); ip != "127.0.0.2" {
		t.Fatalf("the node sees the attacker at %q, want 127.0.0.2 (loopback aliases)", ip)
	}
	// Sessions held from the phone's own address, more than its bound.
	sameAddr := newHostAt(t, "127.0.0.1")
	var mine []network.Stream
	for range maxOpenPerAddr + 2 {
		mine = append(mine, holdSession(t, sameAddr, n))
	}
	if err := Pair(ctxT(t), newHostAt(t, "127.0.0.1"), n.uri(t), newOwner(t)); err != nil {
		t.Fatalf("pairing while %d sessions are held: %v", len(held)+len(mine), err)
	}
	// The phone's session and the newest held ones stayed; the oldest of
	// the address were reset.
	for i, s := range mine[:3] {
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := readFrame(s); err == nil {
			t.Errorf("held session %d of the phone's address still open", i)
		}
	}
	// The other addresses' held sessions were not touched by the phone.
	for i, s := range held {
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := readFrame(s); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			t.Errorf("held session %d from another address ended: %v", i, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// TestBusyIsAResult: an address whose slots are all waiting out their
// delay gets Busy as the result frame, after its challenge, which Pair
// reads as ErrBusy; another address pairs meanwhile without any delay.
func TestBusyIsAResult(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n := startNode(t, "", nil, Config{Sleep: sleep})
	u, _ := ParseURI(n.uri(t))
	wrong := u
	wrong.Token[3] ^= 1
	attacker := newHostAt(t, "127.0.0.9")
	for i := range freeAttempts {
		if err := PairURI(ctxT(t), attacker, wrong, newOwner(t)); !errors.Is(err, ErrRejected) {
			t.Fatalf("free attempt %d: %v", i, err)
		}
	}
	// maxPending more wrong attempts now wait out their delay.
	var wg sync.WaitGroup
	errs := make(chan error, maxPending)
	for range maxPending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- PairURI(ctxT(t), newHostAt(t, "127.0.0.9"), wrong, newOwner(t))
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := len(slept)
		mu.Unlock()
		if k == maxPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts waiting, want %d", k, maxPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The attacker's address is full: Busy, readable, even with the right
	// token.
	if err := PairURI(ctxT(t), newHostAt(t, "127.0.0.9"), u, newOwner(t)); !errors.Is(err, ErrBusy) {
		t.Fatalf("attempt from a busy address: %v, want ErrBusy", err)
	}
	// The owner's phone elsewhere is neither busy nor delayed.
	owner := newOwner(t)
	if err := PairURI(ctxT(t), newHostAt(t, "127.0.0.1"), u, owner); err != nil {
		t.Fatalf("phone on another address: %v", err)
	}
	if !n.p.IsOwner(owner.Public().(ed25519.PublicKey)) {
		t.Fatal("phone not the owner")
	}
	mu.Lock()
	if len(slept) != maxPending {
		t.Errorf("delays %v: the phone was delayed by the attacker's failures", slept)
	}
	mu.Unlock()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrNotWaiting) {
			t.Errorf("a delayed wrong attempt after pairing: %v, want ErrNotWaiting", err)
		}
	}
}

// TestConfiguredOwner: a node with a configured owner is owned from its
// first start: no token, no URI, pairing refused; a factory reset forgets
// the users and messages and leaves it owned by the configured owner; the
// owner survives restarts, also without the configuration, until a reset.
func TestConfiguredOwner(t *testing.T) {
	x := newOwner(t)
	xPub := x.Public().(ed25519.PublicKey)
	resets := 0
	cfg := Config{Owner: xPub, OnReset: func(context.Context) error { resets++; return nil }}
	n := startNode(t, "", nil, cfg)
	if n.p.State() != StateOwned || !n.p.IsOwner(xPub) {
		t.Fatalf("state %v, owner X %v", n.p.State(), n.p.IsOwner(xPub))
	}
	if _, err := n.p.URI(); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("URI of a configured node: %v, want ErrNotWaiting", err)
	}
	// Someone with a token of this node's key (there is none; forge one)
	// is refused, and X itself is told it owns the node.
	forged := URI{NodeKey: n.p.nodeKey, Addrs: []Addr{mustAddr(t, n)}}
	if err := PairURI(ctxT(t), newHost(t, nil), forged, newOwner(t)); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("pairing a configured node: %v, want ErrNotWaiting", err)
	}
	if err := PairURI(ctxT(t), newHost(t, nil), forged, x); err != nil {
		t.Fatalf("the configured owner asking: %v", err)
	}

	var mu sync.Mutex
	var changes []State
	n.p.OnChange(func(s State) { mu.Lock(); changes = append(changes, s); mu.Unlock() })
	if err := n.p.Reset(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !slices.Equal(changes, []State{StateResetting, StateOwned}) || resets != 1 {
		t.Errorf("reset: changes %v, OnReset ran %d times", changes, resets)
	}
	mu.Unlock()
	if !n.p.IsOwner(xPub) || n.p.State() != StateOwned {
		t.Fatalf("after reset: state %v", n.p.State())
	}

	// Restart without the configuration: still owned by X.
	path, sk := n.path, n.sk
	n.stop()
	n2 := startNode(t, path, sk, Config{})
	if !n2.p.IsOwner(xPub) {
		t.Fatalf("after a restart without the config: state %v", n2.p.State())
	}
	// A reset without it opens pairing.
	if err := n2.p.Reset(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	if n2.p.State() != StateWaiting {
		t.Fatalf("reset without a configured owner: state %v, want waiting", n2.p.State())
	}
}

func mustAddr(t *testing.T, n *testNode) Addr {
	t.Helper()
	for _, m := range n.h.Addrs() {
		if a, ok := AddrFromMultiaddr(m); ok {
			return a
		}
	}
	t.Fatal("node has no address")
	return Addr{}
}

// TestConfiguredOwnerConflict: a node paired with Y refuses to start with
// X configured (ErrOwnerConflict) and changes nothing; with the pairing
// record wiped (the offline factory reset) it starts owned by X.
func TestConfiguredOwnerConflict(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	y := newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), y); err != nil {
		t.Fatal(err)
	}
	path, sk := n.path, n.sk
	n.stop()
	x := newOwner(t).Public().(ed25519.PublicKey)

	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, sk)
	_, err = New(db.Meta("provisioning"), h, Config{Owner: x})
	if !errors.Is(err, ErrOwnerConflict) {
		t.Fatalf("New with another configured owner: %v, want ErrOwnerConflict", err)
	}
	if _, err := New(db.Meta("provisioning"), h, Config{Owner: x[:7]}); err == nil {
		t.Fatal("a 7-byte configured owner accepted")
	}
	h.Close()
	db.Close()

	n2 := startNode(t, path, sk, Config{})
	if !n2.p.IsOwner(y.Public().(ed25519.PublicKey)) {
		t.Fatal("the refused start changed the owner")
	}
	n2.stop()
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Wipe(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	n3 := startNode(t, path, sk, Config{Owner: x})
	if !n3.p.IsOwner(x) {
		t.Fatalf("after the wipe: state %v, want owned by X", n3.p.State())
	}
}

// TestSessionsBounded: however many addresses open sessions, at most
// maxOpen wait for a proof.
func TestSessionsBounded(t *testing.T) {
	ss := newSessions()
	now := time.Now()
	var dones []func()
	for i := range maxOpen + 50 {
		dones = append(dones, ss.opened(fmt.Sprintf("ip4:10.0.%d.%d", i/250, i%250), fakeStream{}, now))
	}
	ss.mu.Lock()
	n := len(ss.open)
	ss.mu.Unlock()
	if n != maxOpen {
		t.Fatalf("%d open sessions, bound %d", n, maxOpen)
	}
	for _, d := range dones {
		d()
	}
	for i := range maxAddrs + 10 {
		ss.take(fmt.Sprint(i), now)
		ss.give(fmt.Sprint(i), false)
	}
	if len(ss.addrs) > maxAddrs {
		t.Fatalf("%d addresses remembered, bound %d", len(ss.addrs), maxAddrs)
	}
}

// fakeStream is a stream that can only be reset: the bookkeeping test
// needs no network.
type fakeStream struct{ network.Stream }

func (fakeStream) Reset() error { return nil }
