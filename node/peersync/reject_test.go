package peersync

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit"
	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Every class of bad message is rejected with its reason, not stored and
// not forwarded, and the session that carried it keeps working.
func TestRejectsBadMessages(t *testing.T) {
	w, blocked, unwanted := newWriter(t), newWriter(t), newWriter(t)
	accept := func(c *Config) {
		c.Access = hooks{accept: func(_ peer.ID, ch channel.ID) bool { return ch != blocked.id() }}
	}
	b, c, x := newNode(t, nil, accept), newNode(t, nil), newNode(t, nil)
	b.svc.Want(w.id(), blocked.id())
	c.svc.Want(w.id(), blocked.id())
	connect(t, c, b)
	connect(t, x, b)
	testkit.Eventually(t, "sessions up", func() bool { return sessionUp(b, c) && sessionUp(b, x) })
	ctx := context.Background()

	original := w.seal(t, "stored once", time.Now())
	if _, err := x.svc.PushTo(ctx, b.h.ID(), original); err != nil {
		t.Fatalf("push of a good message: %v", err)
	}
	testkit.Eventually(t, "C gets the good message", func() bool { return has(t, c, original.ID()) })

	mutate := func(f func(e *channel.Envelope)) *channel.Envelope {
		e := w.seal(t, "to be spoiled", time.Now())
		f(e)
		return e
	}
	tests := []struct {
		name string
		env  *channel.Envelope
		want wirepb.Reason
	}{
		{"bad signature", mutate(func(e *channel.Envelope) { e.Signature[5] ^= 1 }), wirepb.Reason_REASON_BAD_SIGNATURE},
		{"tampered ciphertext", mutate(func(e *channel.Envelope) { e.Ciphertext[3] ^= 1 }), wirepb.Reason_REASON_BAD_SIGNATURE},
		{"tampered timestamp", mutate(func(e *channel.Envelope) { e.Timestamp-- }), wirepb.Reason_REASON_BAD_SIGNATURE},
		{"expired", w.seal(t, "old", time.Now().Add(-8*24*time.Hour)), wirepb.Reason_REASON_EXPIRED},
		{"far future", w.seal(t, "future", time.Now().Add(time.Hour)), wirepb.Reason_REASON_FROM_FUTURE},
		{"oversized", mutate(func(e *channel.Envelope) { e.Ciphertext = make([]byte, channel.MaxCiphertext+1) }), wirepb.Reason_REASON_TOO_LARGE},
		{"wrong version", mutate(func(e *channel.Envelope) { e.Version = 1 }), wirepb.Reason_REASON_BAD_VERSION},
		{"duplicate", original, wirepb.Reason_REASON_DUPLICATE},
		{"blocked channel", blocked.seal(t, "blocked", time.Now()), wirepb.Reason_REASON_NOT_ACCEPTED},
		{"unwanted channel", unwanted.seal(t, "nobody serves this", time.Now()), wirepb.Reason_REASON_NOT_WANTED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.svc.PushTo(ctx, b.h.ID(), tt.env)
			var rj *RejectError
			if !errors.As(err, &rj) || !errors.Is(err, ErrRejected) {
				t.Fatalf("push: %v, want a RejectError", err)
			}
			if rj.Reason != tt.want || rj.Detail == "" {
				t.Fatalf("reason %s (%q), want %s with a detail", rj.Reason, rj.Detail, tt.want)
			}
			if tt.want != wirepb.Reason_REASON_DUPLICATE && has(t, b, tt.env.ID()) {
				t.Fatal("rejected message was stored")
			}
		})
	}

	// The same session still carries a good message, which is forwarded.
	good := w.seal(t, "after the bad ones", time.Now())
	if _, err := x.svc.PushTo(ctx, b.h.ID(), good); err != nil {
		t.Fatalf("push after rejects: %v", err)
	}
	testkit.Eventually(t, "C gets the good message", func() bool { return has(t, c, good.ID()) })
	// Nothing rejected was announced: C saw exactly the two good ones.
	if got := c.svc.Stats(b.h.ID()).FramesIn["announce"]; got != 2 {
		t.Fatalf("C got %d announcements, want 2", got)
	}
	if got := count(t, c, w.id()) + count(t, c, blocked.id()); got != 2 {
		t.Fatalf("C holds %d messages, want 2", got)
	}
	if got := b.svc.Stats(x.h.ID()).Rejected; got != uint64(len(tests)) {
		t.Fatalf("B counted %d rejects, want %d", got, len(tests))
	}
}

// rawPeer speaks the protocol by hand, to send what a correct
// implementation never would.
type rawPeer struct {
	t  *testing.T
	h  host.Host
	st network.Stream
	r  *bufio.Reader
	// helloRead: the node's Hello was read. The node answers an opener's
	// Hello with its own, so it is read lazily, before the first frame.
	helloRead bool
}

func newRawPeer(t *testing.T) host.Host { return newRawPeerTB(t) }

func newRawPeerTB(t testing.TB) host.Host { return testhost.New(t) }

func dialRaw(t *testing.T, h host.Host, to *node) *rawPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: to.h.ID(), Addrs: to.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(ctx, to.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetReadDeadline(time.Now().Add(20 * time.Second))
	return &rawPeer{t: t, h: h, st: st, r: bufio.NewReader(st)}
}

func (rp *rawPeer) write(b []byte) {
	rp.t.Helper()
	if _, err := rp.st.Write(b); err != nil {
		rp.t.Fatal(err)
	}
}

func (rp *rawPeer) send(f *wirepb.Frame) {
	rp.t.Helper()
	if err := wire.WriteMsg(rp.st, f); err != nil {
		rp.t.Fatal(err)
	}
}

func (rp *rawPeer) read() *wirepb.Frame {
	rp.t.Helper()
	if !rp.helloRead {
		rp.helloRead = true
		if f := rp.read(); f.GetHello() == nil {
			rp.t.Fatalf("first frame from the node is %v, want hello", f)
		}
	}
	f, _, err := wire.ReadSyncFrame(rp.r, wire.MaxFrameSize)
	if err != nil {
		rp.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func helloFrame(want ...channel.ID) *wirepb.Frame {
	return helloFrames("raw", 8, want)[0]
}

// Garbage frames close only the stream that carried them, after a Reject
// saying why; the connection and the node's other sessions survive, and a
// new stream on the same connection works. An unsolicited body is refused
// and survived.
func TestGarbageFrames(t *testing.T) {
	w := newWriter(t)
	b, c := newNode(t, nil), newNode(t, nil)
	b.svc.Want(w.id())
	c.svc.Want(w.id())
	connect(t, c, b)
	testkit.Eventually(t, "B-C up", func() bool { return sessionUp(b, c) })
	raw := newRawPeer(t)
	varint := func(n uint64) []byte { return binary.AppendUvarint(nil, n) }
	tests := []struct {
		name       string
		hello      bool
		payload    []byte
		wantReason wirepb.Reason
		wantEnd    bool
	}{
		{"undecodable protobuf", true, append(varint(4), 0xff, 0xff, 0xff, 0xff), wirepb.Reason_REASON_MALFORMED, true},
		{"length over the cap", true, varint(wire.MaxFrameSize + 1), wirepb.Reason_REASON_MALFORMED, true},
		{"overlong varint", true, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, wirepb.Reason_REASON_MALFORMED, true},
		{"empty frame", true, varint(0), wirepb.Reason_REASON_MALFORMED, true},
		{"push before hello", false, nil, wirepb.Reason_REASON_MALFORMED, true},
		{"unsolicited body", true, nil, wirepb.Reason_REASON_NOT_REQUESTED, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := dialRaw(t, raw, b)
			unasked := w.seal(t, "unasked", time.Now())
			if tt.hello {
				rp.send(helloFrame())
			}
			switch tt.name {
			case "push before hello":
				rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 1, Envelope: wire.EnvelopeToPB(w.seal(t, "early", time.Now()))}}})
			case "unsolicited body":
				rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{Envelope: wire.EnvelopeToPB(unasked)}}})
			default:
				rp.write(tt.payload)
			}
			f := rp.read()
			rj := f.GetReject()
			if rj == nil || rj.GetReason() != tt.wantReason || rj.GetDetail() == "" {
				t.Fatalf("got %v, want a Reject %s with a detail", f, tt.wantReason)
			}
			if tt.wantEnd {
				if _, _, err := wire.ReadSyncFrame(rp.r, wire.MaxFrameSize); err == nil {
					t.Fatal("stream still open after a protocol error")
				}
			} else {
				// The stream survives a bad message: a push on it is acked.
				rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 3, Envelope: wire.EnvelopeToPB(w.seal(t, "same stream", time.Now()))}}})
				if ack := rp.read().GetAck(); ack == nil || ack.GetSeq() != 3 {
					t.Fatal("no ack on the stream that carried the bad message")
				}
			}
			if raw.Network().Connectedness(b.h.ID()) != network.Connected {
				t.Fatal("the connection died with the stream")
			}
			// A fresh stream on the same connection works: a push is acked.
			rp2 := dialRaw(t, raw, b)
			rp2.send(helloFrame())
			e := w.seal(t, "after "+tt.name, time.Now())
			rp2.send(&wirepb.Frame{Kind: &wirepb.Frame_Push{Push: &wirepb.Push{Seq: 7, Envelope: wire.EnvelopeToPB(e)}}})
			if ack := rp2.read().GetAck(); ack == nil || ack.GetSeq() != 7 {
				t.Fatal("no ack on a fresh stream")
			}
			testkit.Eventually(t, "B's other session still relays", func() bool { return has(t, c, e.ID()) })
			if has(t, b, unasked.ID()) {
				t.Fatal("unsolicited body stored")
			}
			_ = rp2.st.Close()
		})
	}
}

// A peer that announces a forged message and serves it on request gets a
// Reject with the reason; the message is neither stored nor announced on,
// and it is not fetched again when announced again.
func TestRejectsBadFetchedBody(t *testing.T) {
	w := newWriter(t)
	b, c := newNode(t, nil), newNode(t, nil)
	b.svc.Want(w.id())
	c.svc.Want(w.id())
	connect(t, c, b)
	testkit.Eventually(t, "B-C up", func() bool { return sessionUp(b, c) })

	raw := newRawPeer(t)
	rp := dialRaw(t, raw, b)
	rp.send(helloFrame(w.id()))
	forged := w.seal(t, "forged", time.Now())
	forged.Signature[0] ^= 1
	id := forged.ID()
	hdr := wire.HeaderToPB(wire.Header{ID: id, Channel: forged.Channel, Timestamp: forged.Timestamp, Size: uint32(forged.Size())})
	announce := &wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: []*wirepb.Header{hdr}}}}
	rp.send(announce)

	next := func() *wirepb.Frame { // skipping B's reconcile rounds and interest updates
		for {
			if f := rp.read(); f.GetReconcile() == nil && f.GetWant() == nil && f.GetHello() == nil {
				return f
			}
		}
	}
	f := next()
	fetch := f.GetFetch()
	if fetch == nil || len(fetch.GetIds()) != 1 || string(fetch.GetIds()[0]) != string(id[:]) {
		t.Fatalf("B did not fetch the announced message; it sent %v", f)
	}
	rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{Envelope: wire.EnvelopeToPB(forged)}}})
	rj := next().GetReject()
	if rj == nil || rj.GetReason() != wirepb.Reason_REASON_BAD_SIGNATURE || string(rj.GetId()) != string(id[:]) {
		t.Fatalf("got %v, want Reject BAD_SIGNATURE for the message", rj)
	}
	if has(t, b, id) {
		t.Fatal("forged message stored")
	}

	// Announced again, it is not fetched again; a good message on the
	// same stream still is, and it reaches C while the forged one never did.
	rp.send(announce)
	good := w.seal(t, "good", time.Now())
	gid := good.ID()
	rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: []*wirepb.Header{
		wire.HeaderToPB(wire.Header{ID: gid, Channel: good.Channel, Timestamp: good.Timestamp, Size: uint32(good.Size())})}}}})
	fetch = next().GetFetch()
	if fetch == nil || len(fetch.GetIds()) != 1 || string(fetch.GetIds()[0]) != string(gid[:]) {
		t.Fatalf("want a fetch of the good message only, got %v", fetch)
	}
	rp.send(&wirepb.Frame{Kind: &wirepb.Frame_Body{Body: &wirepb.Body{Envelope: wire.EnvelopeToPB(good)}}})
	testkit.Eventually(t, "C gets the good message", func() bool { return has(t, c, gid) })
	if has(t, c, id) {
		t.Fatal("forged message forwarded")
	}
	if got := c.svc.Stats(b.h.ID()).FramesIn["announce"]; got != 1 {
		t.Fatalf("C got %d announcements, want 1", got)
	}
}
