package client

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

const carolNumber = "+49 151 23456789"

// lookupNet: Alice asks her friends Bob, Frank, Dave and Eve (one channel
// each, named after the friend). Bob and Frank each share a channel with
// Carol, in which Carol wrote, and have her number in their address
// books. Eve shares a channel with Dave and lies: her address book says
// Carol's number is Dave's. Dave knows nothing. One real node carries it all.
type lookupNet struct {
	alice, bob, frank, dave, eve, carol *Client
}

// share makes a channel on a (named an) and joins it on b (named bn).
func share(t *testing.T, a *Client, an string, b *Client, bn string) {
	t.Helper()
	k, err := a.Channels().Create(an)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Channels().Join(bn, k); err != nil {
		t.Fatal(err)
	}
}

// wrote sends a text from c in channel name and waits until reader shows
// it in its channel rname.
func wrote(t *testing.T, c *Client, name string, reader *Client, rname string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, name, "hello from "+name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message at "+rname, func() bool {
		h, _ := reader.History(rname, 0)
		for _, m := range h {
			if m.Author == c.ID() {
				return true
			}
		}
		return false
	})
}

func newLookupNet(t *testing.T) *lookupNet {
	t.Helper()
	ln := &lookupNet{alice: openClient(t, home(t, "alice")), bob: openClient(t, home(t, "bob")),
		frank: openClient(t, home(t, "frank")), dave: openClient(t, home(t, "dave")),
		eve: openClient(t, home(t, "eve")), carol: openClient(t, home(t, "carol"))}
	share(t, ln.alice, "bob", ln.bob, "alice")
	share(t, ln.alice, "frank", ln.frank, "alice")
	share(t, ln.alice, "dave", ln.dave, "alice")
	share(t, ln.alice, "eve", ln.eve, "alice")
	share(t, ln.bob, "carol", ln.carol, "bob")
	share(t, ln.frank, "carol", ln.carol, "frank")
	share(t, ln.eve, "dave", ln.dave, "eve")
	n := startNode(t, ownedBy(t, ln.alice.ID()))
	addNodes(t, ln.alice, n)
	connect(t, ln.alice)
	for _, c := range []*Client{ln.bob, ln.frank, ln.dave, ln.eve, ln.carol} {
		ticket(t, ln.alice, c)
		addNodes(t, c, n)
		connect(t, c)
	}
	// Nobody but Bob wrote in Bob's channel with Carol yet: her identity
	// cannot be told.
	if _, err := ln.bob.Contacts().Add("carol", carolNumber, "", ""); !errors.Is(err, ErrContactIdentity) {
		t.Fatalf("AddContact before Carol wrote: %v, want ErrContactIdentity", err)
	}
	wrote(t, ln.carol, "bob", ln.bob, "carol")
	wrote(t, ln.carol, "frank", ln.frank, "carol")
	wrote(t, ln.dave, "eve", ln.eve, "dave")
	for _, c := range []*Client{ln.bob, ln.frank} {
		ct, err := c.Contacts().Add("carol", "0151 2345-6789", "49", "")
		if err != nil {
			t.Fatal(err)
		}
		if ct.Identity != ln.carol.ID() || ct.Address != "+4915123456789" {
			t.Fatalf("contact %+v", ct)
		}
	}
	if _, err := ln.eve.Contacts().Add("dave", carolNumber, "", ""); err != nil { // the lie
		t.Fatal(err)
	}
	return ln
}

func stats(c *Client) lookupStats {
	st := c.lookups()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stats
}

// TestFindContactAndAgree: Alice looks Carol's number up through her
// friends. Bob and Frank name Carol, Eve names Dave: a conflict, shown as
// one. Dave does not know the number and posts nothing. Alice then agrees
// a channel with Carol over the paths through Bob and Frank.
func TestFindContactAndAgree(t *testing.T) {
	ln := newLookupNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	res, err := ln.alice.Contacts().Find(ctx, "0049 151 23456789", "", []string{"bob", "frank", "eve"}, 45*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []ContactAnswer{
		{Identity: ln.carol.ID(), Friend: ln.bob.ID(), Via: "bob"},
		{Identity: ln.carol.ID(), Friend: ln.frank.ID(), Via: "frank"},
		{Identity: ln.dave.ID(), Friend: ln.eve.ID(), Via: "eve"},
	}
	for _, w := range want {
		if !slices.Contains(res.Answers, w) {
			t.Errorf("missing answer %+v in %+v", w, res.Answers)
		}
	}
	if len(res.Answers) != 3 || !res.Conflict || len(res.Identities) != 2 || len(res.Rejected) != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := res.Via(ln.carol.ID()); !slices.Equal(got, []string{"bob", "frank"}) {
		t.Fatalf("paths to Carol %v", got)
	}
	if got := res.AgreeCommand("carol", ln.carol.ID()); got != "redpanda friends agree carol --with "+ln.carol.ID()+" --via bob,frank" {
		t.Fatalf("agree command %q", got)
	}

	// Dave does not know the number: he takes the query and stays silent.
	silent, err := ln.alice.Contacts().Find(ctx, carolNumber, "", []string{"dave"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Dave to take the query", func() bool { return stats(ln.dave).queries >= 1 })
	if s := stats(ln.dave); s.answered != 0 || s.unknown != 1 || len(silent.Answers) != 0 {
		t.Fatalf("Dave: stats %+v, Alice got %+v", s, silent.Answers)
	}

	// The found paths carry the multi-path agreement with Carol.
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type side struct {
		ag  *Agreement
		err error
	}
	carolDone := make(chan side, 1)
	go func() {
		ag, err := ln.carol.Friends().Accept(ctx, "alice", ln.alice.ID())
		carolDone <- side{ag, err}
	}()
	waitAccepting(t, ln.carol, ln.alice)
	agA, err := ln.alice.Friends().Agree(ctx, "carol", ln.carol.ID(), res.Via(ln.carol.ID()))
	if err != nil {
		t.Fatal(err)
	}
	c := <-carolDone
	if c.err != nil {
		t.Fatal(c.err)
	}
	if agA.SafetyCode != c.ag.SafetyCode || agA.Channel.ID != c.ag.Channel.ID {
		t.Fatalf("Alice %s %s, Carol %s %s", agA.Channel.ID, agA.SafetyCode, c.ag.Channel.ID, c.ag.SafetyCode)
	}
}

// TestLookupRateLimit: a flood of queries from one asker gets lookupBurst
// answers; the rest go unanswered. The answers come back to queries
// Alice's client never registered, and are refused as such.
func TestLookupRateLimit(t *testing.T) {
	ln := newLookupNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := ln.alice.byName("bob")
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := NormalizePhone(carolNumber, "")
	q := lookupQuery{}
	copy(q.Hash[:], ContactHash(hash))
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	copy(q.Pub[:], priv.PublicKey().Bytes())
	const flood = lookupBurst + 5
	for range flood {
		_, _ = rand.Read(q.ID[:])
		if _, err := ln.alice.post(ctx, cs, channel.KindControl, q.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "Bob to take the flood", func() bool { return stats(ln.bob).queries == flood })
	if s := stats(ln.bob); s.answered != lookupBurst || s.limited != flood-lookupBurst {
		t.Fatalf("Bob: %+v, want %d answered and %d limited", s, lookupBurst, flood-lookupBurst)
	}
	waitFor(t, "Alice to refuse the unasked answers", func() bool { return stats(ln.alice).rejected == lookupBurst })
}

// TestLookupRefusals: malformed, oversized, wrong-version, unasked,
// misrouted, forged, moved and replayed answers are each refused with
// their error; stale and malformed queries are not answered.
func TestLookupRefusals(t *testing.T) {
	alice, bob := openClient(t, home(t, "alice")), openClient(t, home(t, "bob"))
	share(t, alice, "bob", bob, "alice")
	share(t, alice, "other", bob, "other")
	asked, _ := alice.byName("bob")
	other, _ := alice.byName("other")
	bobID := bob.self.Public()

	// An open query of Alice's, as Contacts.Find registers it.
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	q := lookupQuery{}
	_, _ = rand.Read(q.ID[:])
	_, _ = rand.Read(q.Hash[:])
	copy(q.Pub[:], priv.PublicKey().Bytes())
	p := &pendingLookup{hash: q.Hash, priv: priv, channels: map[channel.ID]string{asked.key.ID(): "bob"},
		from: map[string]bool{}, changed: make(chan struct{}, 1)}
	st := alice.lookups()
	st.mu.Lock()
	st.pending[q.ID] = p
	st.mu.Unlock()

	carol := identity(t, alice.ID()) // any identity will do as the contact
	good, err := sealLookupAnswer(q, carol)
	if err != nil {
		t.Fatal(err)
	}
	unasked := q
	_, _ = rand.Read(unasked.ID[:])
	toUnasked, _ := sealLookupAnswer(unasked, carol)
	forged := good.Encode()
	forged[len(forged)-1] ^= 1
	moved := toUnasked // sealed for another query, relabelled as ours
	moved.ID = q.ID
	badVersion := good.Encode()
	badVersion[1] = 9

	for _, tc := range []struct {
		name string
		cs   *chanState
		body []byte
		want error
	}{
		{"empty-ish", asked, []byte{control.LookupAnswer}, ErrBadLookup},
		{"truncated", asked, good.Encode()[:lookupAnswerSize-1], ErrBadLookup},
		{"oversized", asked, append(good.Encode(), 0), ErrBadLookup},
		{"wrong version", asked, badVersion, ErrBadLookup},
		{"never asked", asked, toUnasked.Encode(), ErrUnknownQuery},
		{"other channel", other, good.Encode(), ErrUnknownQuery},
		{"forged", asked, forged, ErrBadLookup},
		{"moved to our query", asked, moved.Encode(), ErrBadLookup},
		{"good", asked, good.Encode(), nil},
		{"replayed", asked, good.Encode(), ErrReplayedAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := alice.takeLookupAnswer(tc.cs, bobID, tc.body)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if len(p.answers) != 1 || p.answers[0].Identity != alice.ID() || p.answers[0].Friend != bob.ID() {
		t.Fatalf("answers %+v", p.answers)
	}

	// The responder side: a malformed query is an error; a stale one, one
	// from the future and an unknown hash are silence.
	bcs, _ := bob.byName("alice")
	aliceID := alice.self.Public()
	now := time.Now()
	if err := bob.answerLookup(bcs, aliceID, now, q.Encode()[:10]); !errors.Is(err, ErrBadLookup) {
		t.Fatalf("short query: %v", err)
	}
	for _, ts := range []time.Time{now.Add(-lookupMaxAge - time.Second), now.Add(lookupMaxSkew + time.Second)} {
		_, _ = rand.Read(q.ID[:])
		if err := bob.answerLookup(bcs, aliceID, ts, q.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = rand.Read(q.ID[:])
	for range 2 { // the second time it is a replayed query
		if err := bob.answerLookup(bcs, aliceID, now, q.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	if s := stats(bob); s.queries != 4 || s.stale != 3 || s.unknown != 1 || s.answered != 0 {
		t.Fatalf("Bob's stats %+v", s)
	}
}
