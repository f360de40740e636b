package node

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/p2p"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// registrant is a light client with its own host, store and sync service,
// registered at a node.
type registrant struct {
	id   *channel.Identity
	svc  *peersync.Service
	node peer.ID
	keys []*channel.Key
}

func newRegistrant(t *testing.T, n *Node, id *channel.Identity, chain routing.Chain, keys ...*channel.Key) *registrant {
	t.Helper()
	h := testhost.New(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "registrant.db"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	svc := peersync.New(h, db, peersync.Config{Light: true, Logger: quiet()})
	t.Cleanup(func() { svc.Close(); h.Close(); db.Close() })
	ctx := context.Background()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var chs []channel.ID
	for _, k := range keys {
		chs = append(chs, k.ID())
	}
	if _, err := routing.Register(ctx, h, n.Host.ID(), id, chain, chs); err != nil {
		t.Fatal(err)
	}
	return &registrant{id: id, svc: svc, node: n.Host.ID(), keys: keys}
}

// send pushes one ~60 KiB message into its k-th channel and returns the
// node's refusal reason (UNSPECIFIED when it was stored) and detail.
func (p *registrant) send(t *testing.T, k int) (wirepb.Reason, string) {
	t.Helper()
	e, err := p.keys[k].Seal(p.id, channel.KindText, []byte(strings.Repeat("z", 60<<10)), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.svc.PushTo(context.Background(), p.node, e)
	var rj *peersync.RejectError
	switch {
	case err == nil:
		return wirepb.Reason_REASON_UNSPECIFIED, ""
	case errors.As(err, &rj):
		return rj.Reason, rj.Detail
	}
	t.Fatalf("push: %v", err)
	return 0, ""
}

// flood sends into the registrant's channels in turn until every one is
// refused, and returns how many were stored and the last refusal.
func (p *registrant) flood(t *testing.T) (stored int, reason wirepb.Reason, detail string) {
	t.Helper()
	refused := map[int]bool{}
	for i := 0; len(refused) < len(p.keys); i++ {
		k := i % len(p.keys)
		if refused[k] {
			continue
		}
		r, d := p.send(t, k)
		if r == wirepb.Reason_REASON_UNSPECIFIED {
			stored++
			continue
		}
		refused[k], reason, detail = true, r, d
		if i > 10000 {
			t.Fatal("never refused")
		}
	}
	return stored, reason, detail
}

func newKeys(t *testing.T, n int) []*channel.Key {
	var ks []*channel.Key
	for range n {
		k, err := channel.NewKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

// TestRegistrantQuotas is issue 19's full disk: a friend-of-a-friend with
// 16 channels fills only its own quota; friends together stop short of
// the owner's reserve; the owner still sends; revoking the sponsor frees
// what the revoked users brought in; a channel also wanted by a nearer
// friend is charged to that friend and kept.
func TestRegistrantQuotas(t *testing.T) {
	const quota = 256 << 10
	owner, f1, f2, x := mustID(t), mustID(t), mustID(t), mustID(t)
	n, err := New(Config{
		DataDir: t.TempDir(), NoDHT: true, Logger: quiet(),
		P2P:             p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet()},
		Routing:         routing.Config{Owner: owner.Public()},
		Store:           store.Options{MaxTotalBytes: 1 << 20, ReservedBytes: 320 << 10},
		RegistrantBytes: quota,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	end := time.Now().Add(24 * time.Hour)
	tk := func(from *channel.Identity, to channel.IdentityKey, hop int) *routing.Ticket {
		tk, err := routing.IssueTicket(from, to, hop, end)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	c1 := routing.Chain{tk(owner, f1.Public(), 1)}
	cx := append(append(routing.Chain{}, c1...), tk(f1, x.Public(), 2))
	shared := newKeys(t, 1)[0]

	xp := newRegistrant(t, n, x, cx, append([]*channel.Key{shared}, newKeys(t, 16)...)...) // shared gets the first message
	stored, reason, detail := xp.flood(t)
	if reason != wirepb.Reason_REASON_QUOTA_EXCEEDED || !strings.Contains(detail, x.Public().String()) {
		t.Fatalf("X's flood ended with %s %q, want QUOTA_EXCEEDED naming X", reason, detail)
	}
	st, _ := n.Store.Stats()
	if st.Bytes > quota {
		t.Fatalf("X stored %d messages, %d bytes in all, over its quota %d", stored, st.Bytes, quota)
	}
	// F1 registers the shared channel too: it is now charged to F1, the
	// nearer registrant, and X's quota has room again for its own.
	f1p := newRegistrant(t, n, f1, c1, append(newKeys(t, 1), shared)...)
	use, _ := n.Store.AccountUsage()
	if use[f1.Public().String()] == 0 {
		t.Fatalf("the shared channel is not charged to F1: %v", use)
	}
	f1Stored, _, _ := f1p.flood(t)
	f2p := newRegistrant(t, n, f2, routing.Chain{tk(owner, f2.Public(), 1)}, newKeys(t, 1)...)
	_, reason, detail = f2p.flood(t)
	if reason != wirepb.Reason_REASON_QUOTA_EXCEEDED {
		t.Fatalf("F2: %s %q", reason, detail)
	}
	st, _ = n.Store.Stats()
	if st.Bytes > 1<<20-320<<10 {
		t.Fatalf("friends hold %d bytes, more than the %d outside the owner's reserve", st.Bytes, 1<<20-320<<10)
	}
	// The owner's own sends still go through, up to its reserve.
	op := newRegistrant(t, n, owner, nil, newKeys(t, 1)...)
	ownerStored, reason, _ := op.flood(t)
	if ownerStored < 4 || reason != wirepb.Reason_REASON_QUOTA_EXCEEDED {
		t.Fatalf("the owner stored %d messages (%s) after friends filled their part", ownerStored, reason)
	}
	t.Logf("X stored %d, F1 %d, owner %d messages of ~61 KiB", stored, f1Stored, ownerStored)

	// Revoking F1 removes X too; what only they wanted is deleted, the
	// rest stays.
	before, _ := n.Store.Stats()
	var chs []channel.ID
	for _, u := range n.Registry.Users() {
		if u.Identity == f1.Public() || u.Identity == x.Public() {
			chs = append(chs, u.Channels...)
		}
	}
	if _, err := n.Registry.Revoke(f1.Public()); err != nil {
		t.Fatal(err)
	}
	removed, freed, err := n.DropUnserved(chs)
	if err != nil || removed == 0 || freed == 0 {
		t.Fatalf("DropUnserved: %d, %d, %v", removed, freed, err)
	}
	after, _ := n.Store.Stats()
	if after.Bytes != before.Bytes-freed {
		t.Fatalf("store %d bytes before, %d after, freed %d", before.Bytes, after.Bytes, freed)
	}
	for _, k := range op.keys {
		if cs, _ := n.Store.Headers(k.ID(), 0, 1<<62, 0); len(cs) != ownerStored {
			t.Fatalf("the owner's channel lost messages: %d of %d", len(cs), ownerStored)
		}
	}
	for _, k := range xp.keys {
		if hs, _ := n.Store.Headers(k.ID(), 0, 1<<62, 0); len(hs) != 0 {
			t.Fatalf("a channel only the revoked users wanted keeps %d messages", len(hs))
		}
	}
	for _, k := range f2p.keys {
		if hs, _ := n.Store.Headers(k.ID(), 0, 1<<62, 0); len(hs) == 0 {
			t.Fatal("F2's channel lost its messages to another's revocation")
		}
	}
}

func mustID(t *testing.T) *channel.Identity {
	t.Helper()
	id, err := channel.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
