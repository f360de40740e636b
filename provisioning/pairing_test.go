package provisioning

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redpanda-p2p/homenode/node/store"
)

func TestPairSuccess(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	var mu sync.Mutex
	var changes []State
	n.p.OnChange(func(s State) { mu.Lock(); changes = append(changes, s); mu.Unlock() })
	if got := n.p.State(); got != StateWaiting {
		t.Fatalf("fresh node state %v, want waiting", got)
	}
	uri := n.uri(t)
	owner := newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), uri, owner); err != nil {
		t.Fatalf("Pair: %v", err)
	}
	o, ok := n.p.Owner()
	if !ok || !o.Key.Equal(owner.Public()) || !n.p.IsOwner(owner.Public().(ed25519.PublicKey)) {
		t.Fatalf("owner = %x, %v; want %x", o.Key, ok, owner.Public())
	}
	mu.Lock()
	if !slices.Equal(changes, []State{StateOwned}) {
		t.Errorf("OnChange saw %v, want [owned]", changes)
	}
	mu.Unlock()
	if _, err := n.p.URI(); !errors.Is(err, ErrNotWaiting) {
		t.Errorf("URI after pairing: %v, want ErrNotWaiting", err)
	}
	// Durable: a restart finds the same owner and makes no token.
	path, sk := n.path, n.sk
	n.stop()
	n2 := startNode(t, path, sk, Config{})
	if o2, ok := n2.p.Owner(); !ok || !o2.Key.Equal(owner.Public()) || n2.p.State() != StateOwned {
		t.Fatalf("after restart: state %v owner %x", n2.p.State(), o2.Key)
	}
	tok, _ := ParseURI(uri)
	if logs := n.logs.String(); !strings.Contains(logs, "paired") || strings.Contains(logs, b32.EncodeToString(tok.Token[:])) {
		t.Errorf("logs lack the pairing or reveal the token:\n%s", logs)
	}
}

func TestPairRefusals(t *testing.T) {
	other := startNode(t, "", nil, Config{})
	otherURI, _ := ParseURI(other.uri(t))

	tests := []struct {
		name    string
		prepare func(t *testing.T, n *testNode, uri URI) URI // returns the URI to try
		want    error
	}{
		{"same token a second time", func(t *testing.T, n *testNode, u URI) URI {
			if err := PairURI(ctxT(t), newHost(t, nil), u, newOwner(t)); err != nil {
				t.Fatal(err)
			}
			return u
		}, ErrNotWaiting},
		{"wrong token", func(t *testing.T, n *testNode, u URI) URI {
			u.Token[0] ^= 1
			return u
		}, ErrRejected},
		{"token from another node", func(t *testing.T, n *testNode, u URI) URI {
			u.Token = otherURI.Token
			return u
		}, ErrRejected},
		{"token that died in a restart", func(t *testing.T, n *testNode, u URI) URI {
			path, sk := n.path, n.sk
			n.stop()
			*n = *startNode(t, path, sk, Config{})
			return withAddrs(t, u.String(), n)
		}, ErrRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, "", nil, Config{})
			u, err := ParseURI(n.uri(t))
			if err != nil {
				t.Fatal(err)
			}
			try := tc.prepare(t, n, u)
			before := n.p.State()
			err = PairURI(ctxT(t), newHost(t, nil), try, newOwner(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Pair: %v, want %v", err, tc.want)
			}
			if n.p.State() != before {
				t.Errorf("state changed %v -> %v on a refused attempt", before, n.p.State())
			}
			if logs := n.logs.String(); !strings.Contains(logs, "pairing attempt failed") ||
				strings.Contains(logs, b32.EncodeToString(u.Token[:])) || strings.Contains(logs, b32.EncodeToString(try.Token[:])) {
				t.Errorf("failure not logged, or the token was:\n%s", logs)
			}
			if before == StateWaiting {
				// The refusal did not hurt the real token.
				if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), newOwner(t)); err != nil {
					t.Fatalf("pairing with the right token after a refusal: %v", err)
				}
			}
		})
	}
}

func TestOwnerRetryIsIdempotent(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	uri, owner := n.uri(t), newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), uri, owner); err != nil {
		t.Fatal(err)
	}
	// A lost reply makes the phone ask again: the owner is told it owns
	// the node (proved by signature, the token being dead), others are not.
	if err := Pair(ctxT(t), newHost(t, nil), uri, owner); err != nil {
		t.Fatalf("owner asking again: %v", err)
	}
	if err := Pair(ctxT(t), newHost(t, nil), uri, newOwner(t)); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("someone else: %v, want ErrNotWaiting", err)
	}
}

// rawSession opens a pairing stream and reads the node's challenge.
func rawSession(t *testing.T, from host.Host, n *testNode) (network.Stream, [NonceSize]byte) {
	t.Helper()
	ctx := ctxT(t)
	if err := from.Connect(ctx, peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := from.NewStream(ctx, n.h.ID(), protocol.ID(ProtocolID))
	if err != nil {
		t.Fatal(err)
	}
	body, err := readFrame(s)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := decodeChallenge(body)
	if err != nil {
		t.Fatal(err)
	}
	return s, nonce
}

// makeProof builds a proof the way the phone does, for the given session.
func makeProof(t *testing.T, node, phone peer.ID, nodeNonce [NonceSize]byte, tok Token, owner ed25519.PrivateKey) Proof {
	t.Helper()
	pr := Proof{Owner: owner.Public().(ed25519.PublicKey)}
	rand.Read(pr.PhoneNonce[:])
	tr, err := transcript(node, phone, nodeNonce, pr.PhoneNonce, pr.Owner)
	if err != nil {
		t.Fatal(err)
	}
	pr.MAC = proofMAC(DeriveTokenKey(tok), tr)
	copy(pr.Sig[:], ed25519.Sign(owner, sigMessage(tr)))
	return pr
}

func sendProof(t *testing.T, s network.Stream, pr Proof) Status {
	t.Helper()
	defer s.Close()
	if err := writeFrame(s, pr.marshal()); err != nil {
		t.Fatal(err)
	}
	body, err := readFrame(s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeResult(body)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestProofBoundToSession(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	u, _ := ParseURI(n.uri(t))
	phone, relay := newHost(t, nil), newHost(t, nil)
	owner := newOwner(t)

	// Replay: a valid proof for session 1, sent in session 2.
	s1, nonce1 := rawSession(t, phone, n)
	proof1 := makeProof(t, n.h.ID(), phone.ID(), nonce1, u.Token, owner)
	s1.Reset()
	s2, _ := rawSession(t, phone, n)
	if st := sendProof(t, s2, proof1); st != StatusRejected {
		t.Fatalf("replayed proof: status %d, want rejected", st)
	}

	// Relay: the phone's proof for this challenge, forwarded by another peer.
	s3, nonce3 := rawSession(t, relay, n)
	proof3 := makeProof(t, n.h.ID(), phone.ID(), nonce3, u.Token, owner)
	if st := sendProof(t, s3, proof3); st != StatusRejected {
		t.Fatalf("relayed proof: status %d, want rejected", st)
	}

	// A proof whose signature is not the owner's (key swapped after MAC).
	s4, nonce4 := rawSession(t, phone, n)
	proof4 := makeProof(t, n.h.ID(), phone.ID(), nonce4, u.Token, owner)
	proof4.Sig[0] ^= 1
	if st := sendProof(t, s4, proof4); st != StatusRejected {
		t.Fatalf("bad signature: status %d, want rejected", st)
	}
	if n.p.State() != StateWaiting {
		t.Fatalf("state %v after refused proofs", n.p.State())
	}
	// The same phone, honestly, in its own session.
	s5, nonce5 := rawSession(t, phone, n)
	if st := sendProof(t, s5, makeProof(t, n.h.ID(), phone.ID(), nonce5, u.Token, owner)); st != StatusPaired {
		t.Fatalf("honest proof: status %d", st)
	}
}

func TestAttemptDelaySchedule(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {2, 0}, {3, time.Second}, {4, 2 * time.Second}, {5, 4 * time.Second},
		{8, 32 * time.Second}, {9, 60 * time.Second}, {10, 60 * time.Second}, {1000, 60 * time.Second},
	}
	for _, tc := range tests {
		if got := AttemptDelay(tc.failures); got != tc.want {
			t.Errorf("AttemptDelay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestBurstOfWrongAttemptsSlowsDown(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	}
	n := startNode(t, "", nil, Config{Sleep: sleep})
	u, _ := ParseURI(n.uri(t))
	wrong := u
	wrong.Token[5] ^= 0x80
	phone := newHost(t, nil)
	for i := range 8 {
		if err := PairURI(ctxT(t), phone, wrong, newOwner(t)); !errors.Is(err, ErrRejected) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	mu.Lock()
	if !slices.Equal(slept, want) {
		t.Fatalf("delays %v, want %v", slept, want)
	}
	slept = nil
	mu.Unlock()
	// The right token still works (after the scheduled wait) and clears
	// the count.
	if err := PairURI(ctxT(t), phone, u, newOwner(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(slept, []time.Duration{32 * time.Second}) {
		t.Fatalf("delay before the good attempt %v, want [32s]", slept)
	}
}

func TestResetThenNewOwner(t *testing.T) {
	resets := 0
	n := startNode(t, "", nil, Config{OnReset: func(context.Context) error { resets++; return nil }})
	oldURI, oldOwner := n.uri(t), newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), oldURI, oldOwner); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []State
	n.p.OnChange(func(s State) { mu.Lock(); changes = append(changes, s); mu.Unlock() })
	if err := n.p.Reset(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	if n.p.State() != StateWaiting || resets != 1 {
		t.Fatalf("after reset: state %v, OnReset ran %d times", n.p.State(), resets)
	}
	if _, ok := n.p.Owner(); ok || n.p.IsOwner(oldOwner.Public().(ed25519.PublicKey)) {
		t.Fatal("old owner still recognised")
	}
	mu.Lock()
	if !slices.Equal(changes, []State{StateResetting, StateWaiting}) {
		t.Errorf("OnChange saw %v", changes)
	}
	mu.Unlock()
	// The old owner with its old URI is refused, signature or not.
	if err := Pair(ctxT(t), newHost(t, nil), oldURI, oldOwner); !errors.Is(err, ErrRejected) {
		t.Fatalf("old owner after reset: %v, want ErrRejected", err)
	}
	newURI := n.uri(t)
	if newURI == oldURI {
		t.Fatal("reset kept the token")
	}
	nu, _ := ParseURI(newURI)
	if pid, _ := nu.PeerID(); pid != n.h.ID() {
		t.Fatal("reset without renewal changed the peer ID")
	}
	newOwnerKey := newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), newURI, newOwnerKey); err != nil {
		t.Fatalf("new pairing after reset: %v", err)
	}
	if !n.p.IsOwner(newOwnerKey.Public().(ed25519.PublicKey)) {
		t.Fatal("new owner not recorded")
	}
}

func TestResetRenewingIdentity(t *testing.T) {
	resets := 0
	var renewed = newNodeKey(t)
	renewCalls := 0
	cfg := Config{
		OnReset:       func(context.Context) error { resets++; return nil },
		RenewIdentity: func() error { renewCalls++; return nil },
	}
	n := startNode(t, "", nil, cfg)
	oldOwner := newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), oldOwner); err != nil {
		t.Fatal(err)
	}
	if err := n.p.Reset(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	if !n.p.RestartRequired() || n.p.State() != StateResetting || renewCalls != 1 || resets != 1 {
		t.Fatalf("restart %v state %v renew %d resets %d", n.p.RestartRequired(), n.p.State(), renewCalls, resets)
	}
	if _, err := n.p.URI(); !errors.Is(err, ErrRestartRequired) {
		t.Fatalf("URI before restart: %v", err)
	}
	// The appliance rebuilds the host with the renewed key.
	path := n.path
	n.stop()
	n2 := startNode(t, path, renewed, cfg)
	if n2.p.State() != StateWaiting || renewCalls != 1 || resets != 2 {
		t.Fatalf("after restart: state %v renew %d resets %d", n2.p.State(), renewCalls, resets)
	}
	u, _ := ParseURI(n2.uri(t))
	if pid, _ := u.PeerID(); pid != n2.h.ID() || pid == n.h.ID() {
		t.Fatal("URI does not carry the renewed peer ID")
	}
	if err := Pair(ctxT(t), newHost(t, nil), u.String(), newOwner(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptStateIsNotReplaced(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	path, sk := n.path, n.sk
	n.stop()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Meta("provisioning").Put(recordKey, []byte{recordVersion, 9}); err != nil {
		t.Fatal(err)
	}
	_, err = New(db.Meta("provisioning"), newHost(t, sk), Config{})
	got, _ := db.Meta("provisioning").Get(recordKey)
	db.Close()
	if !errors.Is(err, ErrCorruptState) || len(got) != 2 {
		t.Fatalf("New on a corrupt record: %v (record now %x)", err, got)
	}
}

// TestResetResumesAfterPowerCut: a node that died after the reset's first
// write (owner forgotten) finishes the reset on its next start.
func TestResetResumesAfterPowerCut(t *testing.T) {
	n := startNode(t, "", nil, Config{})
	if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), newOwner(t)); err != nil {
		t.Fatal(err)
	}
	path, sk, id := n.path, n.sk, n.h.ID()
	n.stop()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Meta("provisioning").Put(recordKey, record{state: StateResetting, oldPeer: id}.marshal()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	resets := 0
	n2 := startNode(t, path, sk, Config{OnReset: func(context.Context) error { resets++; return nil }})
	if n2.p.State() != StateWaiting || resets != 1 {
		t.Fatalf("state %v, OnReset ran %d times", n2.p.State(), resets)
	}
	if _, ok := n2.p.Owner(); ok {
		t.Fatal("owner survived the reset")
	}
	if err := Pair(ctxT(t), newHost(t, nil), n2.uri(t), newOwner(t)); err != nil {
		t.Fatal(err)
	}
}

// TestStoredOwner: the owner is read from the store file without starting
// a Provisioner (the appliance does so before the node's registry loads):
// none for a new, waiting or resetting node, the paired owner once owned,
// and ErrCorruptState for a record it cannot read.
func TestStoredOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	read := func() (Owner, bool, error) {
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return StoredOwner(db.Meta("provisioning"))
	}
	if _, ok, err := read(); ok || err != nil {
		t.Fatalf("a new store: owner %v, %v", ok, err)
	}
	n := startNode(t, path, nil, Config{})
	n.stop()
	if _, ok, err := read(); ok || err != nil {
		t.Fatalf("waiting for pairing: owner %v, %v", ok, err)
	}
	n = startNode(t, path, n.sk, Config{})
	owner := newOwner(t)
	if err := Pair(ctxT(t), newHost(t, nil), n.uri(t), owner); err != nil {
		t.Fatal(err)
	}
	n.stop()
	o, ok, err := read()
	if !ok || err != nil || !o.Key.Equal(owner.Public()) {
		t.Fatalf("owned: %x, %v, %v; want %x", o.Key, ok, err, owner.Public())
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Meta("provisioning").Put(recordKey, record{state: StateResetting}.marshal()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, ok, err := read(); ok || err != nil {
		t.Fatalf("resetting: owner %v, %v", ok, err)
	}
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Meta("provisioning").Put(recordKey, []byte{recordVersion, 9}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, ok, err := read(); ok || !errors.Is(err, ErrCorruptState) {
		t.Fatalf("corrupt record: owner %v, %v; want ErrCorruptState", ok, err)
	}
}
