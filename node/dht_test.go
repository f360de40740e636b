package node

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/testkit/testhost"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// phone is a light client made of the SDK's parts: its own host, store
// and sync service, registered with one node.
type phone struct {
	id  *channel.Identity
	h   host.Host
	db  *store.DB
	svc *peersync.Service
}

func newPhone(t *testing.T, ch channel.ID) *phone {
	t.Helper()
	h := testhost.New(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "phone.db"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := channel.NewIdentity(rand.Reader)
	p := &phone{id: id, h: h, db: db, svc: peersync.New(h, db, peersync.Config{Logger: quiet()})}
	p.svc.Want(ch)
	t.Cleanup(func() { p.svc.Close(); h.Close(); db.Close() })
	return p
}

// registerAt registers the phone as n's owner, serving ch, and hands the
// node the statement that lets it serve and provide ch.
func (p *phone) registerAt(t *testing.T, n *Node, key *channel.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Registry.SetOwner(p.id.Public()); err != nil {
		t.Fatal(err)
	}
	if err := p.h.Connect(ctx, peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, err := routing.Register(ctx, p.h, n.Host.ID(), p.id, nil, []channel.ID{key.ID()}); err != nil {
		t.Fatal(err)
	}
	st, err := discovery.IssueStatement(key, n.Host.ID(), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := discovery.HandOver(ctx, p.h, n.Host.ID(), []*discovery.Statement{st}); err != nil || k != 1 {
		t.Fatalf("hand-over: %d accepted, %v", k, err)
	}
}

func startDHTNode(t *testing.T, peers ...string) *Node {
	t.Helper()
	return startWith(t, Config{
		DataDir: t.TempDir(),
		Peers:   peers,
		Discovery: discovery.Config{
			MaintainInterval:         200 * time.Millisecond,
			MaxPeersPerIPGroup:       100,
			MaxPeersPerIPGroupPerCpl: 100,
		},
	})
}

// TestSuperNodesMeetThroughTheDHT: Alice's phone is registered only at S1
// and Bob's only at S2; S1 and S2 know only a third DHT node. Each phone
// hands its node a statement for the channel; the nodes find each other
// in the DHT, prove they serve the channel, and relay Alice's message to
// Bob. A stranger node without a statement gets nothing.
func TestSuperNodesMeetThroughTheDHT(t *testing.T) {
	key, _ := channel.NewKey(rand.Reader)
	boot := startDHTNode(t)
	s1 := startDHTNode(t, boot.Addrs()[0])
	s2 := startDHTNode(t, boot.Addrs()[0])
	alice, bob := newPhone(t, key.ID()), newPhone(t, key.ID())
	alice.registerAt(t, s1, key)
	bob.registerAt(t, s2, key)

	env, err := key.Seal(alice.id, channel.KindText, []byte("hi Bob, via two home nodes"), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.PushTo(context.Background(), s1.Host.ID(), env); err != nil {
		t.Fatal(err)
	}
	waitStoredWithin(t, bob.db, env.ID(), 60*time.Second) // a DHT lookup and provide under a loaded CI machine
	if ok, _ := boot.Store.Has(env.ID()); ok {
		t.Fatal("the bootstrap node, which serves nothing, stored the message")
	}
}
