package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// friendNet is Alice, Bob and three friends on one real node: friend i
// shares channel "f<i>" with Alice and channel "f<i>" with Bob (each side
// names it after the friend), and Bob has written in each of his.
type friendNet struct {
	alice, bob *Client
	friends    []*Client
	via        []string
}

func newFriendNet(t *testing.T) *friendNet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fn := &friendNet{alice: openClient(t, home(t, "alice")), bob: openClient(t, home(t, "bob"))}
	for i := range 3 {
		f := openClient(t, home(t, fmt.Sprintf("friend%d", i)))
		fn.friends = append(fn.friends, f)
		name := fmt.Sprintf("f%d", i)
		fn.via = append(fn.via, name)
		k, err := fn.alice.Channels().Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Channels().Join("alice", k); err != nil {
			t.Fatal(err)
		}
		if k, err = f.Channels().Create("bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := fn.bob.Channels().Join(name, k); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, ownedBy(t, fn.alice.ID()))
	addNodes(t, fn.alice, n)
	connect(t, fn.alice)
	for _, c := range append([]*Client{fn.bob}, fn.friends...) {
		ticket(t, fn.alice, c)
		addNodes(t, c, n)
		connect(t, c)
	}
	for i, f := range fn.friends {
		if _, err := fn.bob.Send(ctx, fn.via[i], "hello from bob"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "Bob's message at a friend", func() bool {
			h, _ := f.History("bob", 0)
			return len(h) > 0 && h[0].Author == fn.bob.ID()
		})
	}
	return fn
}

// waitAccepting waits until c waits for a session from peer, so that the
// initiator's first frames are not dropped as an unknown session.
func waitAccepting(t *testing.T, c, peer *Client) {
	t.Helper()
	id := identity(t, peer.ID())
	waitFor(t, "the responder to wait", func() bool {
		st := c.friends()
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.acceptors[id] != nil
	})
}

// TestAgreeViaFriends: Alice and Bob, who share no channel, agree through
// three friends' real channels; both join the same channel with the same
// safety code, and it works for messages.
func TestAgreeViaFriends(t *testing.T) {
	fn := newFriendNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type res struct {
		ag  *Agreement
		err error
	}
	bobDone := make(chan res, 1)
	go func() {
		ag, err := fn.bob.Friends().Accept(ctx, "alice", fn.alice.ID())
		bobDone <- res{ag, err}
	}()
	waitAccepting(t, fn.bob, fn.alice)
	agA, err := fn.alice.Friends().Agree(ctx, "bob", fn.bob.ID(), fn.via)
	if err != nil {
		t.Fatal(err)
	}
	b := <-bobDone
	if b.err != nil {
		t.Fatal(b.err)
	}
	if agA.Channel.ID != b.ag.Channel.ID || agA.SafetyCode != b.ag.SafetyCode || agA.SafetyCode == "" {
		t.Fatalf("sides differ: alice %s %s, bob %s %s", agA.Channel.ID, agA.SafetyCode, b.ag.Channel.ID, b.ag.SafetyCode)
	}
	// No friend holds the new channel.
	for _, f := range fn.friends {
		chs, _ := f.Channels().List()
		for _, ch := range chs {
			if ch.ID == agA.Channel.ID {
				t.Fatal("a friend has the agreed channel")
			}
		}
	}
	// A second session between the same two works too (sessions close).
	go func() {
		ag, err := fn.bob.Friends().Accept(ctx, "alice2", fn.alice.ID())
		bobDone <- res{ag, err}
	}()
	waitAccepting(t, fn.bob, fn.alice)
	agA2, err := fn.alice.Friends().Agree(ctx, "bob2", fn.bob.ID(), fn.via[:2])
	if err != nil {
		t.Fatal(err)
	}
	if b = <-bobDone; b.err != nil || b.ag.SafetyCode != agA2.SafetyCode || agA2.Channel.ID == agA.Channel.ID {
		t.Fatalf("second session: %v, codes %s / %s", b.err, agA2.SafetyCode, b.ag.SafetyCode)
	}
}

// keySwapper is a malicious friend's forwarding hook: a man in the
// middle who substitutes both X25519 keys and re-MACs the confirmations,
// the strongest attack a single path can make.
type keySwapper struct {
	t          *testing.T
	alice, bob channel.IdentityKey
	mu         sync.Mutex
	k1, k2     *ecdh.PrivateKey // poses as responder to Alice / as initiator to Bob
	withA      []byte
	withB      []byte
	swapped    int // messages rewritten
}

func (m *keySwapper) tamper(toward channel.IdentityKey, p []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(p) == pathMsgSize {
		_, pub, err := ParsePathMessage(p)
		if err != nil {
			m.t.Errorf("attacker: %v", err)
			return p
		}
		peer, _ := ecdh.X25519().NewPublicKey(pub)
		m.swapped++
		if toward == m.bob { // Alice's key: keep it, send Bob ours
			m.withA, _ = m.k1.ECDH(peer)
			return append([]byte{pathMsgVersion, byte(Initiator)}, m.k2.PublicKey().Bytes()...)
		}
		m.withB, _ = m.k2.ECDH(peer)
		return append([]byte{pathMsgVersion, byte(Responder)}, m.k1.PublicKey().Bytes()...)
	}
	macA, _ := hkdf.Key(sha256.New, m.withA, nil, labelConfirm, sha256.Size)
	macB, _ := hkdf.Key(sha256.New, m.withB, nil, labelConfirm, sha256.Size)
	in, out := macA, macB
	if toward == m.alice {
		in, out = macB, macA
	}
	list, err := OpenConfirmMessage(in, p)
	if err != nil {
		m.t.Errorf("attacker could not read a list: %v", err)
		return p
	}
	m.swapped++
	return sealConfirm(out, list)
}

// TestAgreeViaFriendsMaliciousFriend: the second friend's client swaps
// keys when it forwards; Alice and Bob still agree, both drop that path,
// and the secret is not what the attacker's shared secrets give.
func TestAgreeViaFriendsMaliciousFriend(t *testing.T) {
	fn := newFriendNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k1, _ := ecdh.X25519().GenerateKey(rand.Reader)
	k2, _ := ecdh.X25519().GenerateKey(rand.Reader)
	evil := &keySwapper{t: t, alice: identity(t, fn.alice.ID()), bob: identity(t, fn.bob.ID()), k1: k1, k2: k2}
	st := fn.friends[1].friends()
	st.mu.Lock()
	st.tamper = evil.tamper
	st.mu.Unlock()

	type res struct {
		mp  *MultiPath
		err error
	}
	bobDone := make(chan res, 1)
	go func() {
		relays, done, err := fn.bob.Friends().AcceptPaths(ctx, fn.alice.ID())
		if err != nil {
			bobDone <- res{nil, err}
			return
		}
		defer done()
		mp, err := AgreeMultiPath(ctx, Responder, relays)
		bobDone <- res{mp, err}
	}()
	waitAccepting(t, fn.bob, fn.alice)
	relays, done, err := fn.alice.Friends().Paths(fn.bob.ID(), fn.via)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	mpA, err := AgreeMultiPath(ctx, Initiator, relays)
	if err != nil {
		t.Fatal(err)
	}
	b := <-bobDone
	if b.err != nil {
		t.Fatal(b.err)
	}
	mpB := b.mp
	if !bytes.Equal(mpA.Secret, mpB.Secret) || mpA.SafetyCode != mpB.SafetyCode {
		t.Fatalf("honest sides disagree: %s / %s", mpA.SafetyCode, mpB.SafetyCode)
	}
	if mpA.Paths != 2 || !slices.Equal(mpA.Dropped, []int{1}) || mpB.Paths != 2 || len(mpB.Dropped) != 1 {
		t.Fatalf("paths kept/dropped: alice %d %v, bob %d %v", mpA.Paths, mpA.Dropped, mpB.Paths, mpB.Dropped)
	}
	evil.mu.Lock()
	defer evil.mu.Unlock()
	if evil.swapped != 4 {
		t.Fatalf("attacker rewrote %d messages, want 4 (the test would prove nothing)", evil.swapped)
	}
	for _, s := range [][]byte{evil.withA, evil.withB} {
		if bytes.Equal(combinePaths([]pathResult{{shared: s}}), mpA.Secret) {
			t.Fatal("the attacker's shared secret alone gives the channel secret")
		}
	}
}

// TestFriendFrameRoundTrip checks the frame codec and its refusals.
func TestFriendFrameRoundTrip(t *testing.T) {
	f := friendFrame{Hop: 1, Paths: 3, Seq: 7, Payload: []byte("key")}
	f.To[0], f.From[0], f.Session[0] = 1, 2, 3
	got, err := decodeFriendFrame(f.Encode())
	if err != nil || got.Hop != 1 || got.Paths != 3 || got.Seq != 7 || got.To != f.To || got.From != f.From || got.Session != f.Session || string(got.Payload) != "key" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	good := f.Encode()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short", good[:control.FriendPathHeader-1]},
		{"long", append(append([]byte(nil), good[:control.FriendPathHeader]...), make([]byte, maxFriendPayload+1)...)},
		{"version", append([]byte{control.FriendPath, 9}, good[2:]...)},
		{"hop", append([]byte{control.FriendPath, friendPathVersion, 2}, good[3:]...)},
		{"no paths", append([]byte{control.FriendPath, friendPathVersion, 0, 0}, good[4:]...)},
		{"too many paths", append([]byte{control.FriendPath, friendPathVersion, 0, MaxPaths + 1}, good[4:]...)},
	} {
		if _, err := decodeFriendFrame(tc.b); !errors.Is(err, ErrBadFriendFrame) {
			t.Errorf("%s: %v, want ErrBadFriendFrame", tc.name, err)
		}
	}
}

// FuzzFriendFrame: frames come from channel members; decoding never
// panics and what decodes re-encodes to the same bytes.
func FuzzFriendFrame(f *testing.F) {
	fr := friendFrame{Hop: 0, Paths: 2, Payload: []byte{1, 2, 3}}
	f.Add(fr.Encode())
	f.Add([]byte{control.FriendPath})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFriendFrame(b)
		if err != nil {
			return
		}
		if !bytes.Equal(fr.Encode(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// TestFriendFrameHandling drives the control dispatch directly: frames are
// delivered in the sender's order whatever order they come in; duplicates,
// frames from someone else, frames for someone else and hop-1 frames at a
// friend go nowhere; a frame of a session nobody waits for yet reaches
// the responder who starts waiting a moment later.
func TestFriendFrameHandling(t *testing.T) {
	c := openClient(t, home(t, "me"))
	peerC, other := openClient(t, home(t, "peer")), openClient(t, home(t, "other"))
	peer, stranger := identity(t, peerC.ID()), identity(t, other.ID())
	self := identity(t, c.ID())
	if _, err := c.Channels().Create("x"); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.byName("x")
	relays, done, err := c.Friends().Paths(peerC.ID(), []string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	r := relays[0].(*friendRelay)
	frame := func(hop, seq byte, from, to channel.IdentityKey, sid [friendSessionSize]byte, p string) *channel.Message {
		f := friendFrame{Hop: hop, Paths: 1, Seq: seq, To: to, From: from, Session: sid, Payload: []byte(p)}
		return &channel.Message{Kind: channel.KindControl, Author: from, Body: f.Encode()}
	}
	for _, m := range []*channel.Message{
		frame(1, 1, peer, self, r.session, "second"),
		frame(1, 0, stranger, self, r.session, "not the peer"),
		frame(1, 0, peer, stranger, r.session, "for someone else"),
		frame(1, 0, peer, self, r.session, "first"),
		frame(1, 0, peer, self, r.session, "duplicate"),
		frame(0, 2, peer, self, r.session, "hop 0 addressed to me: not forwarded, not delivered"),
	} {
		c.handleControl(cs, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []string{"first", "second"} {
		got, err := r.Receive(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if got, err := r.Receive(short); err == nil {
		t.Fatalf("unexpected extra frame %q", got)
	}
	if st := c.friends(); len(st.routes) != 0 || len(st.rate) != 0 {
		t.Fatal("a frame addressed to this client was treated as one to forward")
	}

	// A new session from the peer before anyone waits for it.
	var sid [friendSessionSize]byte
	sid[0] = 9
	c.handleControl(cs, frame(1, 0, peer, self, sid, "early"))
	acc, doneAcc, err := c.Friends().AcceptPaths(ctx, peerC.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer doneAcc()
	if got, err := acc[0].Receive(ctx); len(acc) != 1 || err != nil || string(got) != "early" {
		t.Fatalf("early frame: %d paths, %q %v", len(acc), got, err)
	}
}
