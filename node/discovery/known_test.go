package discovery

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRedialAfterAddressesForgotten: two super nodes that proved a
// channel to each other lose their connection and every address the
// peerstore and the DHT had for each other (what a long split or outage
// leaves). The upkeep dials again at the addresses remembered when the
// statements were shown, and they sync again.
func TestRedialAfterAddressesForgotten(t *testing.T) {
	w, a, b := connectedPair(t)
	ch := w.key.ID()
	eventually(t, "b authorized a", func() bool { return len(b.disc.SyncPeers(ch)) == 1 })
	forget := func(n, o *superNode) {
		n.h.Network().ClosePeer(o.h.ID())
		n.h.Peerstore().ClearAddrs(o.h.ID())
		n.disc.DHT().RoutingTable().RemovePeer(o.h.ID())
	}
	forget(a, b)
	forget(b, a)
	eventually(t, "a and b reconnected", func() bool {
		return len(a.disc.SyncPeers(ch)) == 1 && len(b.disc.SyncPeers(ch)) == 1
	})
	id, err := a.sync.Publish(context.Background(), w.seal(t, "after the outage"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.sub, id, "the message after the outage")
}

// TestDiallerKeepsProvedFriend: the node that dials a super node found
// for a channel (Connect, as after a DHT lookup) keeps it as a friend
// once it proved the channel, as the answering node does, and still has
// it, with its addresses, after a restart: a power cut does not send the
// dialling side back to the DHT to find the nodes it synced with.
func TestDiallerKeepsProvedFriend(t *testing.T) {
	w, a, b := connectedPair(t)
	ch := w.key.ID()
	proved := func(n *superNode, p peer.ID) bool {
		for _, f := range n.disc.Friends() {
			if f.ID == p && !f.Proved.IsZero() && len(f.Addrs) > 0 && slices.Contains(f.Channels, ch) {
				return true
			}
		}
		return false
	}
	if !proved(a, b.h.ID()) {
		t.Fatalf("the dialling node keeps no proved friend for the node it dialled: %+v", a.disc.Friends())
	}
	eventually(t, "the answering node keeps the dialler", func() bool { return proved(b, a.h.ID()) })

	dir := a.dir
	a.stop()
	a = startSuperNode(t, dir, fastConfig())
	if !proved(a, b.h.ID()) {
		t.Fatalf("after a restart the dialling node lost its friend: %+v", a.disc.Friends())
	}
}

// connectedPair starts two super nodes serving one writer's channel, a
// having dialled b for it (Connect: both proved the channel).
func connectedPair(t *testing.T) (w *writer, a, b *superNode) {
	t.Helper()
	w = newWriter(t)
	a = startSuperNode(t, t.TempDir(), fastConfig())
	b = startSuperNode(t, t.TempDir(), fastConfig())
	a.serve(t, w.key)
	b.serve(t, w.key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.disc.Connect(ctx, info(b.h), w.key.ID()); err != nil {
		t.Fatal(err)
	}
	return w, a, b
}
