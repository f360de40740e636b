package discovery

import (
	"context"
	"fmt"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// fakeProvider is a real host on the DHT that provides a channel's key
// but cannot show a valid statement for it: it answers the authz protocol
// with a forged, expired or other-channel statement, or hangs, or does not
// speak it at all.
func fakeProvider(t *testing.T, kind int, key *channel.Key, boot peer.AddrInfo) peer.ID {
	t.Helper()
	h := smallHost(t)
	t.Cleanup(func() { h.Close() })
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(ProtocolPrefix), dht.BootstrapPeers(boot), dht.DisableValues())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	other := newKey(t)
	var st *Statement
	switch kind {
	case 0: // forged: another key's signature under our channel
		st, _ = IssueStatement(other, h.ID(), time.Now().Add(time.Hour))
		st.Channel = key.ID()
	case 1: // expired: once a real member's grant
		st, _ = IssueStatement(key, h.ID(), time.Now().Add(-time.Minute))
	case 2: // for another channel
		st, _ = IssueStatement(other, h.ID(), time.Now().Add(time.Hour))
	}
	switch kind {
	case 0, 1, 2:
		h.SetStreamHandler(AuthzProtocol, func(s network.Stream) {
			defer s.Close()
			if _, err := readFrame(s); err != nil {
				return
			}
			f, _ := encodeFrame([]*Statement{st})
			s.Write(f)
		})
	case 3: // silent: reads and never answers
		done := make(chan struct{})
		t.Cleanup(func() { close(done) }) // runs before h.Close: no handler outlives the test
		h.SetStreamHandler(AuthzProtocol, func(s network.Stream) {
			select {
			case <-time.After(30 * time.Second):
			case <-done:
			}
			s.Reset()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, boot); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fake's routing table has the bootstrap node", func() bool { return d.RoutingTable().Size() > 0 })
	for _, day := range []Day{DayOf(time.Now()), DayOf(time.Now()) - 1} {
		if err := d.Provide(ctx, ProvideKey(key.ID(), day), true); err != nil {
			t.Fatalf("fake provide: %v", err)
		}
	}
	return h.ID()
}

// TestFakeProvidersDoNotStopDelivery: 20 fake providers of every kind
// announce the channel beside the one real super node; S1 tries a bounded
// number per round, refuses each fake, skips it afterwards, reaches S2,
// and Alice's message gets to Bob.
func TestFakeProvidersDoNotStopDelivery(t *testing.T) {
	w := newWriter(t)
	ch := w.key.ID()
	boot := startSuperNode(t, t.TempDir(), fastConfig())
	var fakes []peer.ID
	for i := range 20 {
		fakes = append(fakes, fakeProvider(t, i%5, w.key, info(boot.h)))
	}
	alice, bob := newPhone(t, ch), newPhone(t, ch)
	cfg := fastConfig(info(boot.h))
	cfg.MaxAttempts, cfg.Concurrency, cfg.DialTimeout = 4, 2, time.Second
	s1 := startSuperNode(t, t.TempDir(), cfg, alice.h.ID())
	s2 := startSuperNode(t, t.TempDir(), fastConfig(info(boot.h)), bob.h.ID())
	s2.serve(t, w.key)
	s1.serve(t, w.key)
	connectTo(t, alice.h, s1.h)
	connectTo(t, bob.h, s2.h)
	eventually(t, "S1 reached the real provider through the fakes", func() bool {
		return s1.disc.Authorized(s2.h.ID(), ch) && s2.disc.Authorized(s1.h.ID(), ch)
	})
	for i, f := range fakes {
		if s1.disc.Authorized(f, ch) {
			t.Fatalf("fake provider %d (kind %d) authorized", i, i%5)
		}
	}
	id, err := alice.sync.Publish(context.Background(), w.seal(t, "through the fakes"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, bob.sub, id, "message to Bob")
}

// TestConnectRefusesBadStatements: each kind of fake is refused by
// Connect with the matching error.
func TestConnectRefusesBadStatements(t *testing.T) {
	w := newWriter(t)
	boot := startSuperNode(t, t.TempDir(), fastConfig())
	s := startSuperNode(t, t.TempDir(), fastConfig(info(boot.h)))
	s.serve(t, w.key)
	cases := []struct {
		kind int
		want error
	}{{0, ErrBadSignature}, {1, ErrExpired}, {2, ErrNotAuthorized}, {3, ErrNotAuthorized}, {4, ErrNotAuthorized}}
	for _, tc := range cases {
		t.Run(fmt.Sprint("kind", tc.kind), func(t *testing.T) {
			id := fakeProvider(t, tc.kind, w.key, info(boot.h))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			addrs := boot.h.Peerstore().Addrs(id)
			err := s.disc.Connect(ctx, peer.AddrInfo{ID: id, Addrs: addrs}, w.key.ID())
			if !errorsIs(err, tc.want) {
				t.Fatalf("Connect = %v, want %v", err, tc.want)
			}
		})
	}
}
