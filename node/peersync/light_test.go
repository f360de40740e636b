package peersync

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

func ids(bs [][]byte) []channel.ID {
	out := make([]channel.ID, 0, len(bs))
	for _, b := range bs {
		ch, _ := wire.ChannelID(b)
		out = append(out, ch)
	}
	return out
}

func sameSet(a, b []channel.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// What a node tells a peer on the wire, frame by frame, with and without
// Hello.light: a light peer's Hello is answered with only the channels
// both want, the node's later Wants reach it only for channels it wants,
// and a channel it comes to want that the node serves is announced back
// and reconciled. A peer without the flag (every peer that predates it)
// hears about everything, as before.
func TestHelloLightFlag(t *testing.T) {
	mine, other1, other2, joint, late, future := newWriter(t), newWriter(t), newWriter(t), newWriter(t), newWriter(t), newWriter(t)
	tests := []struct {
		name       string
		light      bool
		wantHello  []channel.ID
		wantWants  []channel.ID // Want adds after the Hello
		wantRecons []channel.ID // channels the node starts reconciling
	}{
		{"light", true, []channel.ID{mine.id()}, []channel.ID{joint.id(), future.id()}, []channel.ID{joint.id(), future.id()}},
		{"old-style", false, []channel.ID{mine.id(), other1.id(), other2.id(), joint.id()}, []channel.ID{late.id(), future.id()}, []channel.ID{future.id()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newNode(t, nil)
			b.svc.Want(mine.id(), other1.id(), other2.id(), joint.id())
			rp := dialRaw(t, newRawPeer(t), b)
			hello := helloFrame(mine.id(), future.id())
			hello.GetHello().Light = tt.light
			rp.send(hello)
			rp.helloRead = true
			h := rp.read().GetHello()
			if h == nil {
				t.Fatal("first frame from the node is not a Hello")
			}
			if got := ids(h.GetWant()); !sameSet(got, tt.wantHello) {
				t.Fatalf("node's Hello lists %v, want %v", got, tt.wantHello)
			}
			if h.GetLight() {
				t.Fatal("a node says it is light")
			}

			jid := joint.id()
			b.svc.Want(late.id())                                                                       // the peer does not want it
			rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: [][]byte{jid[:]}}}}) // the node does
			b.svc.Want(future.id())                                                                     // both now
			// A push acked is the sync point: the node queued everything
			// it had to say about the frames before it ahead of the Ack.
			rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 1, Envelope: wire.EnvelopeToPB(mine.seal(t, "sync point", time.Now()))}}})
			var wants, recons []channel.ID
			for {
				f := rp.read()
				if a := f.GetAck(); a != nil && a.GetSeq() == 1 {
					break
				}
				switch k := f.GetKind().(type) {
				case *wirepb.Frame_Want:
					wants = append(wants, ids(k.Want.GetAdd())...)
					if len(k.Want.GetRemove()) > 0 {
						t.Fatalf("unexpected Want remove %v", ids(k.Want.GetRemove()))
					}
				case *wirepb.Frame_Reconcile:
					ch, _ := wire.ChannelID(k.Reconcile.GetChannel())
					if !slices.Contains(recons, ch) {
						recons = append(recons, ch)
					}
				default:
					t.Fatalf("unexpected frame %v", f)
				}
			}
			if !sameSet(wants, tt.wantWants) {
				t.Fatalf("node's Wants after Hello: %v, want %v", wants, tt.wantWants)
			}
			if !sameSet(recons, tt.wantRecons) {
				t.Fatalf("node reconciles %v, want %v", recons, tt.wantRecons)
			}

			b.svc.Unwant(other1.id(), future.id())
			rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 2, Envelope: wire.EnvelopeToPB(mine.seal(t, "sync point 2", time.Now()))}}})
			var removed []channel.ID
			for {
				f := rp.read()
				if a := f.GetAck(); a != nil && a.GetSeq() == 2 {
					break
				}
				if w := f.GetWant(); w != nil {
					removed = append(removed, ids(w.GetRemove())...)
				}
			}
			wantRemoved := []channel.ID{other1.id(), future.id()}
			if tt.light {
				wantRemoved = []channel.ID{future.id()}
			}
			if !sameSet(removed, wantRemoved) {
				t.Fatalf("node's Want removes: %v, want %v", removed, wantRemoved)
			}
		})
	}
}

// A light client (Config.Light) against a node that serves many channels
// and also talks to a full peer: the client learns of, and is announced,
// only its own channels; the full peer hears about everything; the
// client's pushes are accepted; and whichever side comes to want a
// channel first after the Hellos, both converge on its history.
func TestLightClientHearsOnlyItsChannels(t *testing.T) {
	a, bw, c, d := newWriter(t), newWriter(t), newWriter(t), newWriter(t)
	n := newNode(t, nil)
	full := newNode(t, nil)
	light := newNode(t, nil, func(c *Config) { c.Light = true })
	n.svc.Want(a.id(), bw.id())
	full.svc.Want(bw.id())
	light.svc.Want(a.id(), d.id())
	connect(t, full, n)
	connect(t, light, n)
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(n, full) && sessionUp(n, light) })

	ls := light.svc.sessionFor(n.h.ID())
	if ls.openedByPeer {
		t.Fatal("the light client's session was opened by the node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := full.h.NewStream(ctx, light.h.ID(), ProtocolID); err == nil {
		_ = st.Reset()
		t.Fatal("a light client accepted a sync stream")
	}

	n.svc.Want(c.id()) // no one else wants it
	n.svc.Want(d.id()) // the light client does
	testkit.Eventually(t, "light client learns the node wants d", func() bool { return ls.peerWants(d.id()) })
	ls.mu.Lock()
	got := slices.Collect(func(yield func(channel.ID) bool) {
		for ch := range ls.wants {
			if !yield(ch) {
				return
			}
		}
	})
	ls.mu.Unlock()
	if !sameSet(got, []channel.ID{a.id(), d.id()}) {
		t.Fatalf("light client knows the node wants %v, want only its own a and d", got)
	}
	if w := light.svc.Stats(n.h.ID()).FramesIn["want"]; w != 1 {
		t.Fatalf("light client got %d Want frames, want 1 (d)", w)
	}
	fs := full.svc.sessionFor(n.h.ID())
	testkit.Eventually(t, "full peer learns every channel", func() bool {
		return fs.peerWants(a.id()) && fs.peerWants(bw.id()) && fs.peerWants(c.id()) && fs.peerWants(d.id())
	})

	// Headers: one in a channel the client does not want, then one in
	// its own; the stream keeps their order.
	pub := func(w *writer, body string) channel.MessageID {
		t.Helper()
		id, err := n.svc.Publish(context.Background(), w.seal(t, body, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pub(bw, "not for the light client")
	inA := pub(a, "for the light client")
	testkit.Eventually(t, "light client fetched its message", func() bool { return has(t, light, inA) })
	if got := light.svc.Stats(n.h.ID()).FramesIn["announce"]; got != 1 {
		t.Fatalf("light client got %d announcements, want 1", got)
	}

	// Relay rule: the client's push into a channel the node serves is
	// accepted.
	e := a.seal(t, "pushed", time.Now())
	if _, err := light.svc.PushTo(context.Background(), n.h.ID(), e); err != nil {
		t.Fatalf("push from a light client: %v", err)
	}
	if !has(t, n, e.ID()) {
		t.Fatal("acked push not stored")
	}
}

// Both sides come to want a channel only after their Hellos, in either
// order: the light client and the node still reconcile its history and
// relay new messages both ways.
func TestLightBothWantAfterHello(t *testing.T) {
	for _, clientFirst := range []bool{true, false} {
		name := map[bool]string{true: "client first", false: "node first"}[clientFirst]
		t.Run(name, func(t *testing.T) {
			x := newWriter(t)
			n := newNode(t, nil)
			light := newNode(t, nil, func(c *Config) { c.Light = true })
			connect(t, light, n)
			testkit.Eventually(t, "session up", func() bool { return sessionUp(n, light) })
			old := time.Now().Add(-time.Hour)
			nodeOld, err := n.svc.Publish(context.Background(), x.seal(t, "node's", old))
			if err != nil {
				t.Fatal(err)
			}
			clientOld, err := light.svc.Publish(context.Background(), x.seal(t, "client's", old))
			if err != nil {
				t.Fatal(err)
			}
			if clientFirst {
				light.svc.Want(x.id())
				testkit.Eventually(t, "node learns", func() bool { return n.svc.sessionFor(light.h.ID()).peerWants(x.id()) })
				n.svc.Want(x.id())
			} else {
				n.svc.Want(x.id())
				light.svc.Want(x.id())
			}
			testkit.Eventually(t, "history converges", func() bool { return has(t, light, nodeOld) && has(t, n, clientOld) })

			e := x.seal(t, "new at the node", time.Now())
			if _, err := n.svc.Publish(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, "new message reaches the client", func() bool { return has(t, light, e.ID()) })
			p := x.seal(t, "new from the client", time.Now())
			if _, err := light.svc.PushTo(context.Background(), n.h.ID(), p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An idle session holds no writer goroutine: one starts when a frame is
// queued and ends when the queue is drained, on both sides.
func TestIdleSessionHoldsNoWriter(t *testing.T) {
	x := newWriter(t)
	n := newNode(t, nil)
	light := newNode(t, nil, func(c *Config) { c.Light = true })
	n.svc.Want(x.id())
	light.svc.Want(x.id())
	connect(t, light, n)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(n, light) })
	writing := func(ss *session) bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.writing
	}
	ns, ls := n.svc.sessionFor(light.h.ID()), light.svc.sessionFor(n.h.ID())
	for round := range 3 {
		testkit.Eventually(t, "writers gone", func() bool { return !writing(ns) && !writing(ls) })
		e := x.seal(t, "wake the writers", time.Now())
		if _, err := light.svc.PushTo(context.Background(), n.h.ID(), e); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// A light client is the only side that opens a session, so when its
// session ends while the connection stays it opens the next one itself,
// and catches up on what it missed meanwhile.
func TestLightClientReopensEndedSession(t *testing.T) {
	defer func(w, a, f time.Duration) { reopenWait, reopenFlapAge, reopenFlapWait = w, a, f }(reopenWait, reopenFlapAge, reopenFlapWait)
	reopenWait, reopenFlapAge, reopenFlapWait = 50*time.Millisecond, time.Minute, 200*time.Millisecond

	w := newWriter(t)
	n := newNode(t, nil)
	light := newNode(t, nil, func(c *Config) { c.Light = true })
	n.svc.Want(w.id())
	light.svc.Want(w.id())
	connect(t, light, n)
	testkit.Eventually(t, "session up", func() bool { return sessionUp(n, light) })
	first := light.svc.sessionFor(n.h.ID())

	// The node resets the stream; the connection stays.
	n.svc.sessionFor(light.h.ID()).close(errors.New("test: stream cut"))
	testkit.Eventually(t, "first session gone", func() bool { return light.svc.sessionFor(n.h.ID()) != first })
	id, err := n.svc.Publish(context.Background(), w.seal(t, "while the session was down", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a new session", func() bool {
		ss := light.svc.sessionFor(n.h.ID())
		return ss != nil && ss != first && !ss.openedByPeer
	})
	testkit.Eventually(t, "the light client catches up", func() bool { return has(t, light, id) })
	if n.h.Network().Connectedness(light.h.ID()) != network.Connected {
		t.Fatal("the connection did not stay: the test did not test a reopen on a live connection")
	}
}
