package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// startFriendNode is a super node whose registered users (allowed) may
// introduce other nodes; it knows no bootstrap peer.
func startFriendNode(t *testing.T, dir string, allowed ...peer.ID) *superNode {
	t.Helper()
	cfg := fastConfig()
	cfg.Node = &testNode{introduce: func(p peer.ID) bool { return slices.Contains(allowed, p) }}
	return startSuperNode(t, dir, cfg, allowed...)
}

func introduce(t *testing.T, from *phone, to *superNode, node *superNode, chs ...channel.ID) Verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connectTo(t, from.h, to.h)
	vs, err := Introduce(ctx, from.h, to.h.ID(), []Introduction{{Node: info(node.h), Channels: chs}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d verdicts for one introduction", len(vs))
	}
	return vs[0]
}

func friendOf(n *superNode, p peer.ID) (Friend, bool) {
	for _, f := range n.disc.Friends() {
		if f.ID == p {
			return f, true
		}
	}
	return Friend{}, false
}

// TestIntroducedNodesBecomeFriends: Bob's phone introduces Alice's node A
// to his node B, naming their channel; nothing else connects them. B dials
// A, both prove the channel, Alice's message reaches B, and A is B's DHT
// bootstrap peer. A keeps B (it proved the channel), so after either
// restarts the two find each other again from their own tables.
func TestIntroducedNodesBecomeFriends(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	bobPhone := newPhone(t, ch)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startFriendNode(t, dirA)
	b := startFriendNode(t, dirB, bobPhone.h.ID())
	a.serve(t, w.key)
	b.serve(t, w.key)
	if len(a.h.Network().Peers())+len(b.h.Network().Peers()) != 0 {
		t.Fatal("the nodes are connected before any introduction")
	}

	if v := introduce(t, bobPhone, b, a, ch); v != IntroAccepted {
		t.Fatalf("introduction: %v", v)
	}
	eventually(t, "A and B prove the channel to each other", func() bool {
		return b.disc.Authorized(a.h.ID(), ch) && a.disc.Authorized(b.h.ID(), ch)
	})
	e := w.seal(t, "hi, through a friend node")
	if _, err := a.sync.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.sub, e.ID(), "Alice's message reaches B")
	eventually(t, "A is in B's DHT routing table", func() bool {
		return b.disc.DHT().RoutingTable().Find(a.h.ID()) != ""
	})
	if f, ok := friendOf(b, a.h.ID()); !ok || f.Introducers != 1 || f.Proved.IsZero() || !slices.Contains(f.Channels, ch) {
		t.Fatalf("B's friend entry for A: %+v %v", f, ok)
	}
	if f, ok := friendOf(a, b.h.ID()); !ok || f.Introducers != 0 || f.Proved.IsZero() {
		t.Fatalf("A's friend entry for B (it dialled and proved the channel): %+v %v", f, ok)
	}

	// A restarts: its table brings B back, with nobody introducing again
	// (and without the routing table's saved peers, which would too).
	a.stop()
	forgetRoutingTable(t, dirA)
	a = startFriendNode(t, dirA)
	a.sync.Want(ch)
	if got := a.disc.Served(); !slices.Contains(got, ch) {
		t.Fatalf("A restarted serving %v", got)
	}
	eventually(t, "A, restarted, and B prove the channel again", func() bool {
		return b.disc.Authorized(a.h.ID(), ch) && a.disc.Authorized(b.h.ID(), ch)
	})
	e2 := w.seal(t, "after A restarted")
	if _, err := a.sync.Publish(context.Background(), e2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.sub, e2.ID(), "a message after A's restart reaches B")

	// B restarts.
	b.stop()
	forgetRoutingTable(t, dirB)
	b = startFriendNode(t, dirB, bobPhone.h.ID())
	b.sync.Want(ch)
	eventually(t, "A and B, restarted, prove the channel again", func() bool {
		return b.disc.Authorized(a.h.ID(), ch) && a.disc.Authorized(b.h.ID(), ch)
	})
	e3 := w.seal(t, "after B restarted")
	if _, err := a.sync.Publish(context.Background(), e3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.sub, e3.ID(), "a message after B's restart reaches B")
}

// TestIntroductionLateStatement: B is introduced to A before Alice's
// client handed A the channel's statement. A keeps no proof for a channel
// it does not serve; B keeps showing its statement until A proves the
// channel back, so once A serves it the two prove it to each other.
func TestIntroductionLateStatement(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	bobPhone := newPhone(t, ch)
	a := startFriendNode(t, t.TempDir())
	b := startFriendNode(t, t.TempDir(), bobPhone.h.ID())
	b.serve(t, w.key)
	if v := introduce(t, bobPhone, b, a, ch); v != IntroAccepted {
		t.Fatalf("introduction: %v", v)
	}
	// A does not serve the channel yet, so B's proof authorizes nothing
	// there (issue 19: proofs are kept only for channels served); B keeps
	// showing it, as A has not proved the channel back.
	eventually(t, "B dialled A", func() bool { return a.h.Network().Connectedness(b.h.ID()) == network.Connected })
	if a.disc.Authorized(b.h.ID(), ch) {
		t.Fatal("A keeps a proof for a channel it does not serve")
	}
	if b.disc.Authorized(a.h.ID(), ch) {
		t.Fatal("A proved a channel it does not serve")
	}
	a.serve(t, w.key)
	eventually(t, "A, now serving, and B prove the channel to each other", func() bool {
		return b.disc.Authorized(a.h.ID(), ch) && a.disc.Authorized(b.h.ID(), ch)
	})
}

// TestIntroductionRefusals: a peer that is not a registered user cannot
// introduce (and the node dials nothing for it); a node cannot be
// introduced to itself; a node that serves nothing the friend shares
// proves nothing.
func TestIntroductionRefusals(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	stranger, user := newPhone(t, ch), newPhone(t, ch)
	a := startFriendNode(t, t.TempDir())
	b := startFriendNode(t, t.TempDir(), user.h.ID())
	a.serve(t, w.key)
	b.serve(t, w.key)

	if v := introduce(t, stranger, b, a, ch); v != IntroRefused {
		t.Fatalf("a stranger's introduction: %v", v)
	}
	if v := introduce(t, user, b, b, ch); v != IntroInvalid {
		t.Fatalf("introducing a node to itself: %v", v)
	}
	time.Sleep(time.Second) // give a wrongly accepted introduction time to dial
	if len(b.disc.Friends()) != 0 || b.h.Network().Connectedness(a.h.ID()) == network.Connected {
		t.Fatalf("B keeps %v and is connected to A: %v", b.disc.Friends(), b.h.Network().Connectedness(a.h.ID()))
	}
	// A node without the DHT's introduction protocol (no discovery.Node).
	plainCfg := fastConfig()
	plainCfg.Node = withoutNode
	plain := startSuperNode(t, t.TempDir(), plainCfg)
	connectTo(t, user.h, plain.h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Introduce(ctx, user.h, plain.h.ID(), []Introduction{{Node: info(a.h)}}); err == nil {
		t.Fatal("a node that does not serve introductions answered")
	}
}

// forgetRoutingTable deletes the routing table's peers a stopped node
// saved, leaving its friend table.
func forgetRoutingTable(t *testing.T, dir string) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "messages.db"), store.Options{Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Meta("dht").Delete(peersKey); err != nil {
		t.Fatal(err)
	}
	if b, err := db.Meta("dht").Get(friendsKey); err != nil || len(b) < 10 {
		t.Fatalf("no friend table saved: %q %v", b, err)
	}
}

func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestFriendTableBounds: what remote peers can grow is bounded per
// introducer, for proof-learned entries and in total, and entries expire.
func TestFriendTableBounds(t *testing.T) {
	h := smallHost(t)
	defer h.Close()
	now := time.Now()
	cfg := fastConfig()
	cfg.MaintainInterval = time.Hour // no dialling: this test looks at the table only
	cfg.Now = func() time.Time { return now }
	s, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	unreachable := []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/1")}
	ch := channel.ID{1}
	count := func(by peer.ID) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, f := range s.friends {
			if _, ok := f.by[by]; ok {
				n++
			}
		}
		return n
	}

	// One introducer: its newest MaxFriendsPerIntroducer stay.
	u := randomPeer(t)
	var first, last peer.ID
	for i := range MaxFriendsPerIntroducer + 10 {
		now = now.Add(time.Second)
		p := randomPeer(t)
		if i == 0 {
			first = p
		}
		last = p
		if v, _ := s.introduced(u, Introduction{Node: peer.AddrInfo{ID: p, Addrs: unreachable}, Channels: []channel.ID{ch}}); v != IntroAccepted {
			t.Fatalf("introduction %d: %v", i, v)
		}
	}
	if n := count(u); n != MaxFriendsPerIntroducer {
		t.Fatalf("one introducer holds %d entries, bound %d", n, MaxFriendsPerIntroducer)
	}
	if _, ok := friendOf(&superNode{disc: s}, first); ok {
		t.Fatal("the introducer's oldest entry was kept past its bound")
	}
	if _, ok := friendOf(&superNode{disc: s}, last); !ok {
		t.Fatal("the newest introduction was dropped")
	}

	// The same introduction again is no news.
	if v, news := s.introduced(u, Introduction{Node: peer.AddrInfo{ID: last, Addrs: unreachable}, Channels: []channel.ID{ch}}); v != IntroAccepted || news {
		t.Fatalf("the same introduction again: %v, news %v", v, news)
	}

	// Many introducers: the table stops at MaxFriends; never-proved
	// entries make room for new ones, proved ones are kept.
	proved := last
	s.friendProved(proved, ch, true)
	for range 6 {
		v := randomPeer(t)
		for range MaxFriendsPerIntroducer {
			now = now.Add(time.Second)
			s.introduced(v, Introduction{Node: peer.AddrInfo{ID: randomPeer(t), Addrs: unreachable}})
		}
	}
	if n := len(s.Friends()); n != MaxFriends {
		t.Fatalf("%d friends, bound %d", n, MaxFriends)
	}
	if _, ok := friendOf(&superNode{disc: s}, proved); !ok {
		t.Fatal("a proved friend was evicted for never-proved ones")
	}

	// Proof-learned entries have their own bound.
	s.mu.Lock()
	clear(s.friends)
	s.mu.Unlock()
	for range MaxFriendsFromProof + 20 {
		now = now.Add(time.Second)
		s.friendProved(randomPeer(t), ch, true)
	}
	if n := len(s.Friends()); n != MaxFriendsFromProof {
		t.Fatalf("%d proof-learned friends, bound %d", n, MaxFriendsFromProof)
	}
	if s.friendProved(randomPeer(t), channel.ID{2}, false) {
		t.Fatal("a proof for a channel this node does not serve made a new friend")
	}

	// Lifetimes: proved ones last FriendLifetime, never-reached
	// introductions UnprovenFriendLifetime.
	s.introduced(u, Introduction{Node: peer.AddrInfo{ID: randomPeer(t), Addrs: unreachable}})
	now = now.Add(UnprovenFriendLifetime + time.Minute)
	s.mu.Lock()
	s.pruneFriendsLocked(now)
	s.mu.Unlock()
	if n := len(s.Friends()); n != MaxFriendsFromProof {
		t.Fatalf("after %s: %d friends, want the %d proved ones", UnprovenFriendLifetime, n, MaxFriendsFromProof)
	}
	now = now.Add(FriendLifetime)
	s.mu.Lock()
	s.pruneFriendsLocked(now)
	s.mu.Unlock()
	if n := len(s.Friends()); n != 0 {
		t.Fatalf("after %s: %d friends left", FriendLifetime, n)
	}
}

func TestIntroductionFrames(t *testing.T) {
	p, q := randomPeer(t), randomPeer(t)
	in := []Introduction{
		{Node: peer.AddrInfo{ID: p, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/192.168.1.2/tcp/4001")}}, Channels: []channel.ID{{1}, {2}}},
		{Node: peer.AddrInfo{ID: q}},
	}
	frame, err := encodeIntroductions(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := readIntroductions(bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Node.ID != p || len(out[0].Node.Addrs) != 1 || !slices.Equal(out[0].Channels, in[0].Channels) ||
		out[1].Node.ID != q || len(out[1].Node.Addrs) != 0 || len(out[1].Channels) != 0 {
		t.Fatalf("round trip: %+v", out)
	}
	many := make([]Introduction, MaxIntroductionsPerFrame+1)
	for i := range many {
		many[i] = Introduction{Node: peer.AddrInfo{ID: p}}
	}
	if _, err := encodeIntroductions(many); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many introductions: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"header only", []byte{0}},
		{"oversized", []byte{0xff, 0xff}},
		{"cut", frame[:len(frame)-1]},
		{"no channel count", append([]byte{0, 33, 32}, make([]byte, 32)...)},
		{"two nodes", twoNodeFrame(t, p, q)},
	} {
		if _, err := readIntroductions(bytes.NewReader(tc.b)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func twoNodeFrame(t *testing.T, p, q peer.ID) []byte {
	kp, _ := p.ExtractPublicKey()
	kq, _ := q.ExtractPublicKey()
	rp, _ := kp.Raw()
	rq, _ := kq.Raw()
	h := append(append(append([]byte{}, rp...), 0x01), rq...)
	body := append(append([]byte{byte(len(h))}, h...), 0)
	return append([]byte{0, byte(len(body))}, body...)
}

// FuzzReadIntroductions: the frame decoder never panics, stays within its
// bounds, and what it accepts encodes back to the same introductions.
func FuzzReadIntroductions(f *testing.F) {
	p := randomPeer(f)
	frame, _ := encodeIntroductions([]Introduction{
		{Node: peer.AddrInfo{ID: p, Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/192.168.1.2/tcp/4001")}}, Channels: []channel.ID{{1}}},
	})
	f.Add(frame)
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := readIntroductions(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(in) > MaxIntroductionsPerFrame {
			t.Fatalf("%d introductions", len(in))
		}
		again, err := encodeIntroductions(in)
		if err != nil {
			t.Fatalf("accepted %+v but cannot encode it: %v", in, err)
		}
		out, err := readIntroductions(bytes.NewReader(again))
		if err != nil || len(out) != len(in) {
			t.Fatalf("round trip: %v, %d != %d", err, len(out), len(in))
		}
		for i := range in {
			if out[i].Node.ID != in[i].Node.ID || len(out[i].Node.Addrs) != len(in[i].Node.Addrs) || !slices.Equal(out[i].Channels, in[i].Channels) {
				t.Fatalf("introduction %d: %+v != %+v", i, out[i], in[i])
			}
		}
	})
}

// FuzzDecodeFriends: a damaged saved table is read within the bounds.
func FuzzDecodeFriends(f *testing.F) {
	f.Add([]byte(`[{"id":"12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7","addrs":["/ip4/1.2.3.4/tcp/1"],"channels":{"00":1},"by":{"x":1},"added":1}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, _ := decodeFriends(b, time.Unix(1, 0))
		if len(fs) > MaxFriends {
			t.Fatalf("%d friends", len(fs))
		}
		for _, fr := range fs {
			if len(fr.addrs) > maxFriendAddrs || len(fr.channels) > maxFriendChannels || len(fr.by) > maxFriendIntroducers {
				t.Fatalf("entry beyond its bounds: %d addrs, %d channels, %d introducers", len(fr.addrs), len(fr.channels), len(fr.by))
			}
		}
	})
}
