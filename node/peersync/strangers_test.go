package peersync

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

func randomChannels(n int) []channel.ID {
	out := make([]channel.ID, n)
	for i := range out {
		_, _ = rand.Read(out[i][:])
	}
	return out
}

// wantsOf is the channels the node's index lists for peer p.
func wantsOf(n *node, p peer.ID) int {
	n.svc.wanters.mu.RLock()
	defer n.svc.wanters.mu.RUnlock()
	k := 0
	for _, set := range n.svc.wanters.by {
		for ss := range set {
			if ss.peer == p {
				k++
			}
		}
	}
	return k
}

// A peer that may sync none of the channels it declares leaves no wants
// behind, however many it declares; a peer allowed some has only those
// kept; when the node comes to allow one later, Resync makes it a want.
func TestWantsKeptOnlyForEntitledChannels(t *testing.T) {
	allowed := randomChannels(3)
	late := randomChannels(1)[0]
	var open bool
	n := newNode(t, nil, func(c *Config) {
		c.Access = hooks{accept: func(_ peer.ID, ch channel.ID) bool {
			return slices.Contains(allowed, ch) || (open && ch == late)
		}}
	})
	stranger := dialRaw(t, newRawPeer(t), n)
	wants := randomChannels(3 * wire.MaxIDsPerFrame)
	stranger.send(helloFrame(wants[:wire.MaxIDsPerFrame]...))
	stranger.send(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes(wants[wire.MaxIDsPerFrame : 2*wire.MaxIDsPerFrame])}}})
	stranger.send(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes(wants[2*wire.MaxIDsPerFrame:])}}})
	stranger.send(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes([]channel.ID{allowed[0], late})}}})
	testkit.Eventually(t, "the node read the Wants", func() bool { return wantsOf(n, stranger.h.ID()) == 1 })
	// Only allowed[0] is kept (the others are not allowed, late not yet).
	if got := n.svc.wantTotal.Load(); got != 1 {
		t.Fatalf("the node keeps %d wants, want 1", got)
	}
	open = true
	n.svc.Resync(stranger.h.ID(), late)
	if got := wantsOf(n, stranger.h.ID()); got != 2 {
		t.Fatalf("after Resync the peer wants %d channels here, want 2", got)
	}
	stranger.st.Reset()
	testkit.Eventually(t, "the session's wants dropped", func() bool { return n.svc.wantTotal.Load() == 0 && wantsOf(n, stranger.h.ID()) == 0 })
}

// Wants are bounded per session and over all sessions even for a peer
// allowed everything.
func TestWantsBounded(t *testing.T) {
	n := newNode(t, nil, func(c *Config) { c.MaxWantsPerPeer, c.MaxWants = 100, 150 })
	a := dialRaw(t, newRawPeer(t), n)
	a.send(helloFrame(randomChannels(1000)...))
	testkit.Eventually(t, "a's wants kept up to the per-peer bound", func() bool { return wantsOf(n, a.h.ID()) == 100 })
	b := dialRaw(t, newRawPeer(t), n)
	b.send(helloFrame(randomChannels(1000)...))
	testkit.Eventually(t, "b's wants kept up to the total bound", func() bool { return wantsOf(n, b.h.ID()) == 50 })
	a.st.Reset()
	testkit.Eventually(t, "a's wants released", func() bool { return n.svc.wantTotal.Load() == 50 })
	b.send(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes(randomChannels(100))}}})
	testkit.Eventually(t, "b may now fill its per-peer bound", func() bool { return wantsOf(n, b.h.ID()) == 100 })
}

// ended reports whether the node ended the raw peer's stream.
func ended(rp *rawPeer) bool {
	_ = rp.st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := rp.r.ReadByte()
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	te, ok := err.(interface{ Timeout() bool })
	return ok && te.Timeout()
}

// A stream that never says Hello is closed after HelloTimeout. (The raw
// peer's first read sends the protocol proposal, so the node sees the
// stream.)
func TestHelloDeadline(t *testing.T) {
	n := newNode(t, nil, func(c *Config) { c.HelloTimeout = 300 * time.Millisecond })
	silent := dialRaw(t, newRawPeer(t), n)
	testkit.Eventually(t, "the node ended the silent stream", func() bool { return ended(silent) })
	if n.svc.sessionFor(silent.h.ID()) != nil {
		t.Fatal("the silent session is still listed")
	}
	// A peer that says Hello in time is kept past the deadline.
	talker := dialRaw(t, newRawPeer(t), n)
	talker.send(helloFrame())
	time.Sleep(time.Second)
	if n.svc.sessionFor(talker.h.ID()) == nil {
		t.Fatal("a session that said Hello was closed")
	}
}

// Sessions of peers the node does not know are bounded per address prefix
// (the oldest go first) and live StrangerLifetime; a known peer's session
// is not counted.
func TestStrangerSessionsBounded(t *testing.T) {
	var known peer.ID
	n := newNode(t, nil, func(c *Config) {
		c.Access = hooks{
			accept: func(peer.ID, channel.ID) bool { return false },
			known:  func(p peer.ID) bool { return p == known },
		}
		c.MaxStrangerSessionsPerPrefix = 3
		c.StrangerLifetime = 3 * time.Second
	})
	friend := newRawPeer(t)
	known = friend.ID()
	f := dialRaw(t, friend, n)
	f.send(helloFrame())
	var rps []*rawPeer
	for range 5 {
		rp := dialRaw(t, newRawPeer(t), n)
		rp.send(helloFrame())
		rps = append(rps, rp)
		testkit.Eventually(t, "the session is up", func() bool { return n.svc.sessionFor(rp.h.ID()) != nil })
	}
	// The two oldest strangers (all on 127.0.0.1) were closed.
	for i, rp := range rps {
		if got, want := n.svc.sessionFor(rp.h.ID()) != nil, i >= 2; got != want {
			t.Fatalf("stranger %d: session up %v, want %v", i, got, want)
		}
	}
	testkit.Eventually(t, "strangers' sessions end after their lifetime", func() bool {
		for _, rp := range rps {
			if n.svc.sessionFor(rp.h.ID()) != nil {
				return false
			}
		}
		return true
	})
	if n.svc.sessionFor(friend.ID()) == nil {
		t.Fatal("the known peer's session was closed")
	}
}

func TestAddrPrefix(t *testing.T) {
	n := newNode(t, nil)
	rp := dialRaw(t, newRawPeer(t), n)
	rp.send(helloFrame())
	testkit.Eventually(t, "session", func() bool { return n.svc.sessionFor(rp.h.ID()) != nil })
	if got := n.svc.sessionFor(rp.h.ID()).prefix; got != "127.0.0.0/24" {
		t.Fatalf("prefix %q, want 127.0.0.0/24", got)
	}
}
