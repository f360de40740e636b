package discovery

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
)

func provKey(key, p string) ds.Key { return ds.RawKey(providersPrefix + key + "/" + p) }

// The provider datastore keeps records within its bounds per peer, per
// key and in total, drops the rest, frees a slot on delete, and answers
// the provider manager's queries.
func TestProviderDatastoreBounds(t *testing.T) {
	ctx := context.Background()
	d := newProviderDatastore(Config{MaxProviderRecords: 10, MaxProviderRecordsPerPeer: 4, MaxProvidersPerKey: 3})
	put := func(key, p string) { _ = d.Put(ctx, provKey(key, p), []byte{1}) }
	for i := range 6 {
		put(string(rune('a'+i)), "P") // one peer, six keys
	}
	if held, dropped := d.Records(); held != 4 || dropped != 2 {
		t.Fatalf("one peer: held %d dropped %d, want 4 and 2", held, dropped)
	}
	for _, p := range []string{"Q", "R", "S", "T"} {
		put("k", p) // four peers, one key
	}
	if held, _ := d.Records(); held != 7 {
		t.Fatalf("per key: held %d, want 7", held)
	}
	for i := range 10 {
		put(string(rune('m'+i)), string(rune('U'+i)))
	}
	if held, _ := d.Records(); held != 10 {
		t.Fatalf("total: held %d, want 10", held)
	}
	put("a", "P") // a refresh of a held record is no new record
	if held, _ := d.Records(); held != 10 {
		t.Fatalf("refresh changed the count to %d", held)
	}
	res, _ := d.Query(ctx, dsq.Query{Prefix: providersPrefix + "k"})
	all, _ := res.Rest()
	if len(all) != 3 {
		t.Fatalf("query of key k: %d records, want 3", len(all))
	}
	_ = d.Delete(ctx, provKey("a", "P"))
	put("e", "P")
	if v, err := d.Get(ctx, provKey("e", "P")); err != nil || len(v) != 1 {
		t.Fatalf("after a delete the peer may add again: %v", err)
	}
	res, _ = d.Query(ctx, dsq.Query{Prefix: providersPrefix})
	all, _ = res.Rest()
	if len(all) != 10 {
		t.Fatalf("query of all: %d records, want 10", len(all))
	}
}

// addProviders sends n ADD_PROVIDER messages for random keys on one DHT
// stream, as one hostile peer did.
func addProviders(t *testing.T, h host.Host, to peer.ID, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, to, ProtocolPrefix+"/kad/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := msgio.NewVarintWriter(st)
	me := kadpb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}})
	key := make([]byte, 34)
	key[0], key[1] = 0x12, 0x20
	for range n {
		_, _ = rand.Read(key[2:])
		b, err := proto.Marshal(&kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: key, ProviderPeers: me})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMsg(b); err != nil {
			t.Fatal(err)
		}
	}
}

// A peer flooding the DHT with provider records gets at most its share
// kept (kad-dht writes them in batches of 256).
func TestProviderFloodBounded(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxProviderRecordsPerPeer, cfg.MaxProviderRecords = 50, 80
	cfg.KadBytesPerSecond, cfg.KadBurst = 1<<20, 1<<20
	s := startSuperNode(t, t.TempDir(), cfg)
	a := smallHost(t)
	t.Cleanup(func() { a.Close() })
	connectTo(t, a, s.h)
	addProviders(t, a, s.h.ID(), 600)
	eventually(t, "two batches written", func() bool { _, dropped := s.disc.provs.Records(); return dropped >= 400 })
	if held, _ := s.disc.provs.Records(); held != 50 {
		t.Fatalf("held %d records of one peer, want its bound 50", held)
	}
	b := smallHost(t)
	t.Cleanup(func() { b.Close() })
	connectTo(t, b, s.h)
	addProviders(t, b, s.h.ID(), 600)
	eventually(t, "the second peer's batches written", func() bool { _, dropped := s.disc.provs.Records(); return dropped >= 850 })
	if held, _ := s.disc.provs.Records(); held != 80 {
		t.Fatalf("held %d records in all, want the bound 80", held)
	}
}

// showRaw opens an authz exchange from h and shows sts.
func showRaw(t *testing.T, h host.Host, to peer.ID, sts []*Statement) []*Statement {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, to, AuthzProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err := encodeFrame(sts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(f); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	reply, err := readFrame(st)
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

// Proofs are kept only for channels the node serves, within the per-peer
// bound, and never for longer than MaxStatementValidity.
func TestAuthzOnlyServedAndBounded(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAuthzPerPeer = 2
	s := startSuperNode(t, t.TempDir(), cfg)
	var served []*channel.Key
	for range 3 {
		k := newKey(t)
		s.serve(t, k)
		served = append(served, k)
	}
	h := smallHost(t)
	t.Cleanup(func() { h.Close() })
	connectTo(t, h, s.h)
	var sts []*Statement
	for range MaxStatementsPerFrame - 3 {
		st, err := IssueStatement(newKey(t), h.ID(), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	for _, k := range served {
		st, err := IssueStatement(k, h.ID(), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	reply := showRaw(t, h, s.h.ID(), sts)
	if len(reply) != 2 {
		t.Fatalf("the node answered %d statements, want 2 (its per-peer bound)", len(reply))
	}
	s.disc.mu.Lock()
	n, kept := s.disc.authzN, s.disc.authz[h.ID()]
	s.disc.mu.Unlock()
	if n != 2 || len(kept) != 2 {
		t.Fatalf("the node keeps %d proofs (%d of the peer), want 2", n, len(kept))
	}
	for ch, until := range kept {
		if until.After(time.Now().Add(MaxStatementValidity)) {
			t.Fatalf("proof for %s kept until %s, past MaxStatementValidity", short(ch), until)
		}
	}
	if !s.disc.Known(h.ID()) {
		t.Fatal("a peer that proved a served channel is not known")
	}
	// Unserving a channel drops the proofs for it.
	for ch := range kept {
		s.disc.Unserve(ch)
	}
	s.disc.mu.Lock()
	n = s.disc.authzN
	s.disc.mu.Unlock()
	if n != 0 || s.disc.Known(h.ID()) {
		t.Fatalf("%d proofs left after their channels were unserved", n)
	}
}

// Hand-overs are accepted only for channels of the handing peer's
// registration, used for at most MaxStatementValidity, and dropped by
// Retain (also after a restart); statements served by Serve are not.
func TestHandOverBoundAndRetain(t *testing.T) {
	dir := t.TempDir()
	user := smallHost(t)
	t.Cleanup(func() { user.Close() })
	k1, k2, k3, own := newKey(t), newKey(t), newKey(t), newKey(t)
	cfg := fastConfig()
	cfg.Node = &testNode{handOver: func(p peer.ID) []channel.ID {
		if p == user.ID() {
			return []channel.ID{k1.ID(), k2.ID()}
		}
		return nil
	}}
	s := startSuperNode(t, dir, cfg)
	s.serve(t, own)
	connectTo(t, user, s.h)
	var sts []*Statement
	for _, k := range []*channel.Key{k1, k2, k3} {
		st, err := IssueStatement(k, s.h.ID(), time.Now().Add(100*365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := HandOver(ctx, user, s.h.ID(), sts)
	if n != 2 || !errorsIs(err, ErrNotAuthorized) {
		t.Fatalf("hand-over of 3 (one outside the registration): %d accepted, %v", n, err)
	}
	stranger := smallHost(t)
	t.Cleanup(func() { stranger.Close() })
	connectTo(t, stranger, s.h)
	if n, _ := HandOver(ctx, stranger, s.h.ID(), sts); n != 0 {
		t.Fatalf("a stranger's hand-over: %d accepted", n)
	}
	served := s.disc.Served()
	for _, k := range []*channel.Key{k1, k2, own} {
		if !slices.Contains(served, k.ID()) {
			t.Fatalf("%s not served after the hand-over", short(k.ID()))
		}
	}
	s.disc.mu.Lock()
	until := s.disc.served[k1.ID()].until
	s.disc.mu.Unlock()
	if until.After(time.Now().Add(MaxStatementValidity)) {
		t.Fatalf("a century statement is used until %s", until)
	}
	s.disc.Retain(func(ch channel.ID) bool { return ch == k1.ID() })
	served = s.disc.Served()
	if slices.Contains(served, k2.ID()) || !slices.Contains(served, k1.ID()) || !slices.Contains(served, own.ID()) {
		t.Fatalf("after Retain(k1) the node serves %d channels; want k1 and its own", len(served))
	}
	s.stop()
	s = startSuperNode(t, dir, cfg)
	if got := s.disc.Served(); len(got) != 2 {
		t.Fatalf("after a restart the node serves %d channels, want 2", len(got))
	}
	s.disc.mu.Lock()
	until2 := s.disc.served[k1.ID()].until
	s.disc.mu.Unlock()
	if !until2.Equal(until.Truncate(time.Second)) {
		t.Fatalf("a restart moved the statement's end from %s to %s", until, until2)
	}
	s.disc.Retain(func(channel.ID) bool { return false })
	if got := s.disc.Served(); len(got) != 1 || got[0] != own.ID() {
		t.Fatalf("Retain(none) after a restart leaves %d channels, want only the node's own", len(got))
	}
}
