package routing

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// TestAdmissionPolicy decides requests against registry snapshots built
// in memory: no host, no records. Each rule has a row.
func TestAdmissionPolicy(t *testing.T) {
	f := newFriends(t)
	stranger := newIdentity(t)
	now := time.Now()
	cfg := Config{Capacity: 2}
	cfg.setDefaults()
	owner := f.owner.Public()
	ch := newChannelID(t)

	// A seven-ticket chain: one more than MaxHop.
	long := Chain{}
	prev := f.owner
	var last *channel.Identity
	for i := 1; i <= MaxHop+1; i++ {
		next := newIdentity(t)
		long = append(long, issue(t, prev, next.Public(), min(i, MaxHop), now.Add(time.Hour)))
		prev, last = next, next
	}

	req := func(id *channel.Identity, chain Chain, p peer.ID, at time.Time, chs int) *request {
		r := &request{Identity: id.Public(), Chain: chain, Timestamp: at, Peer: p, Signature: []byte("sig")}
		for range chs {
			r.Channels = append(r.Channels, ch)
		}
		return r
	}
	reg := func(id channel.IdentityKey, hop int, p peer.ID, since time.Time) *entry {
		return &entry{Registration: Registration{Identity: id, Peer: p, Hop: hop, Since: since}, last: since}
	}
	x, y := newIdentity(t).Public(), newIdentity(t).Public()
	full := func(hops ...int) map[channel.IdentityKey]*entry {
		m := map[channel.IdentityKey]*entry{}
		ids := []channel.IdentityKey{x, y}
		for i, h := range hops {
			m[ids[i]] = reg(ids[i], h, peer.ID("held"), now.Add(time.Duration(i)*time.Second))
		}
		return m
	}
	f1old := map[channel.IdentityKey]*entry{f.f1.Public(): reg(f.f1.Public(), 1, peer.ID("phone"), now)}

	tests := []struct {
		name       string
		cfg        Config
		in         admissionInput
		want       Status
		wantDetail string
		wantHop    int
		joining    bool
		evict      channel.IdentityKey
	}{
		{name: "owner", in: admissionInput{req: req(f.owner, nil, "p", now, 1)}, want: StatusOK, wantHop: 0},
		{name: "friend of a friend", in: admissionInput{req: req(f.f2, f.c2, "p", now, 1)}, want: StatusOK, wantHop: 2},
		{name: "from the future", in: admissionInput{req: req(f.f1, f.c1, "p", now.Add(3*time.Minute), 1)}, want: StatusReplay, wantDetail: "away from the node's clock"},
		{name: "from the past", in: admissionInput{req: req(f.f1, f.c1, "p", now.Add(-3*time.Minute), 1)}, want: StatusReplay, wantDetail: "away from the node's clock"},
		{name: "seen before", in: admissionInput{req: req(f.f1, f.c1, "p", now, 1), seen: true}, want: StatusReplay, wantDetail: "seen before"},
		{name: "older than its registration", in: admissionInput{req: req(f.f1, f.c1, "phone", now.Add(-time.Second), 1), regs: f1old}, want: StatusReplay, wantDetail: "older than the registration"},
		{name: "older, from another device", in: admissionInput{req: req(f.f1, f.c1, "laptop", now.Add(-time.Second), 1), regs: f1old}, want: StatusOK, wantHop: 1, joining: true},
		{name: "revoked", in: admissionInput{req: req(f.f2, f.c2, "p", now, 1), revoked: func(k channel.IdentityKey) bool { return k == f.f1.Public() }}, want: StatusRevoked},
		{name: "hop too far", in: admissionInput{req: req(last, long, "p", now, 1)}, want: StatusHopTooFar},
		{name: "chain to another owner", in: admissionInput{req: req(f.f1, f.c1, "p", now, 1), owner: stranger.Public()}, want: StatusBadChain},
		{name: "stranger, no owner yet", in: admissionInput{req: req(stranger, nil, "p", now, 1), owner: channel.IdentityKey{}}, want: StatusNotAllowed, wantDetail: "no owner yet"},
		{name: "stranger", in: admissionInput{req: req(stranger, nil, "p", now, 1)}, want: StatusNotAllowed, wantDetail: "only its owner's friends"},
		{name: "stranger where allowed", cfg: Config{AllowInfinity: true}, in: admissionInput{req: req(stranger, nil, "p", now, 1)}, want: StatusOK, wantHop: HopInfinity},
		{name: "too many channels", in: admissionInput{req: req(f.f1, f.c1, "p", now, DefaultMaxChannels+1)}, want: StatusQuotaExceeded},
		{name: "full of nearer hops", in: admissionInput{req: req(f.f3, f.c3, "p", now, 1), regs: full(1, 2)}, want: StatusFull, wantDetail: "all at hop 3 or nearer"},
		{name: "full of the same hop", in: admissionInput{req: req(f.f2, f.c2, "p", now, 1), regs: full(2, 2)}, want: StatusFull},
		{name: "full counting writes", in: admissionInput{req: req(f.f2, f.c2, "p", now, 1), regs: full(1), writingNew: 1}, want: StatusFull},
		{name: "evicts the farthest, newest", in: admissionInput{req: req(f.f1, f.c1, "p", now, 1), regs: full(2, 2)}, want: StatusOK, wantHop: 1, evict: y},
		{name: "evicts a stranger first", in: admissionInput{req: req(f.f3, f.c3, "p", now, 1), regs: full(HopInfinity, 1)}, want: StatusOK, wantHop: 3, evict: x},
		{name: "renewal needs no room", in: admissionInput{req: req(f.f1, f.c1, "phone", now, 1), regs: map[channel.IdentityKey]*entry{f.f1.Public(): reg(f.f1.Public(), 1, "phone", now.Add(-time.Minute)), x: reg(x, 0, "x", now)}}, want: StatusOK, wantHop: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg.AllowInfinity {
				c.AllowInfinity = true
			}
			in := tt.in
			in.now = now
			if in.owner == (channel.IdentityKey{}) && !strings.Contains(tt.name, "no owner") {
				in.owner = owner
			}
			v := admission(&c, in)
			if v.status != tt.want {
				t.Fatalf("status %v (%s), want %v", v.status, v.detail, tt.want)
			}
			if !strings.Contains(v.detail, tt.wantDetail) {
				t.Errorf("detail %q, want it to say %q", v.detail, tt.wantDetail)
			}
			if tt.want != StatusOK {
				if v.detail == "" {
					t.Error("a refusal without a detail")
				}
				return
			}
			if v.hop != tt.wantHop || v.joining != tt.joining {
				t.Errorf("hop %d joining %v, want %d %v", v.hop, v.joining, tt.wantHop, tt.joining)
			}
			var evicted channel.IdentityKey
			if v.evict != nil {
				evicted = v.evict.Identity
			}
			if evicted != tt.evict {
				t.Errorf("evicts %v, want %v", evicted, tt.evict)
			}
		})
	}
}

// TestAdmittedEntry checks what an admitted request registers.
func TestAdmittedEntry(t *testing.T) {
	f := newFriends(t)
	now := time.Now()
	cfg := Config{}
	cfg.setDefaults()
	ch := newChannelID(t)
	owner := f.owner.Public()

	req := &request{Identity: f.f2.Public(), Chain: f.c2, Channels: []channel.ID{ch}, Timestamp: now, Peer: "phone"}
	in := admissionInput{req: req, now: now, owner: owner}
	e := admittedEntry(&cfg, in, admission(&cfg, in))
	if e.Hop != 2 || e.root != owner || e.SponsoredBy != f.f1.Public() || len(e.path) != 2 {
		t.Fatalf("entry hop %d root %v sponsor %v path %d", e.Hop, e.root, e.SponsoredBy, len(e.path))
	}
	if e.Expires.After(f.c2.notAfter()) || !e.Expires.After(now) {
		t.Errorf("expires %v: not bounded by the chain (%v)", e.Expires, f.c2.notAfter())
	}

	// A renewal from a new device keeps the start and the old device.
	old := &entry{Registration: Registration{Identity: f.f2.Public(), Peer: "tablet", Hop: 2, Since: now.Add(-time.Hour)}, last: now.Add(-time.Minute)}
	in.regs = map[channel.IdentityKey]*entry{old.Identity: old}
	e = admittedEntry(&cfg, in, admission(&cfg, in))
	if !e.Since.Equal(old.Since) || len(e.others) != 1 || e.others[0] != "tablet" || e.Peer != "phone" {
		t.Errorf("renewal: since %v others %v peer %v", e.Since, e.others, e.Peer)
	}

	// A late request from another device joins: the registration stays.
	late := *req
	late.Peer, late.Timestamp = "laptop", now.Add(-2*time.Minute+time.Second)
	in.req = &late
	v := admission(&cfg, in)
	if !v.joining {
		t.Fatalf("not joining: %+v", v)
	}
	e = admittedEntry(&cfg, in, v)
	if e.Peer != "tablet" || len(e.others) != 1 || e.others[0] != "laptop" || !e.last.Equal(old.last) {
		t.Errorf("join: peer %v others %v last %v", e.Peer, e.others, e.last)
	}
}
