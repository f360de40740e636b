package routing

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkRegistered is the check the node's sync Accept hook makes for
// every message stored and every announcement sent, with n clients
// registered. It scanned every registration under the registry's lock
// (323 µs at 5000 on a 2-core VM, and stalled behind a registration's
// fsync); it is now a map lookup under its own lock.
func BenchmarkRegistered(b *testing.B) {
	for _, n := range []int{100, 5000} {
		b.Run(fmt.Sprintf("registrations=%d", n), func(b *testing.B) {
			r := &Registry{regs: map[channel.IdentityKey]*entry{}, devices: map[peer.ID]int{}}
			var last peer.ID
			for i := range n {
				_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
				p, _ := peer.IDFromPublicKey(pub)
				var id channel.IdentityKey
				id[0], id[1] = byte(i), byte(i>>8)
				r.setEntryLocked(&entry{Registration: Registration{Identity: id, Peer: p}})
				last = p
			}
			for b.Loop() {
				if !r.Registered(last) {
					b.Fatal("not registered")
				}
			}
		})
	}
}

// TestDeviceIndex: Registered follows registrations through replacement
// by another device, two identities on one device, and removal.
func TestDeviceIndex(t *testing.T) {
	r := &Registry{regs: map[channel.IdentityKey]*entry{}, devices: map[peer.ID]int{}}
	phone, tablet := peer.ID("phone"), peer.ID("tablet")
	a := &entry{Registration: Registration{Identity: channel.IdentityKey{1}, Peer: phone}}
	aMoved := &entry{Registration: Registration{Identity: channel.IdentityKey{1}, Peer: tablet}}
	b := &entry{Registration: Registration{Identity: channel.IdentityKey{2}, Peer: tablet}}
	for _, step := range []struct {
		name          string
		do            func()
		phone, tablet bool
	}{
		{"a on the phone", func() { r.setEntryLocked(a) }, true, false},
		{"a moves to the tablet", func() { r.setEntryLocked(aMoved) }, false, true},
		{"b on the tablet too", func() { r.setEntryLocked(b) }, false, true},
		{"stale a removed: no effect", func() { r.deleteEntryLocked(a) }, false, true},
		{"a removed, b stays", func() { r.deleteEntryLocked(aMoved) }, false, true},
		{"b removed", func() { r.deleteEntryLocked(b) }, false, false},
	} {
		step.do()
		if r.Registered(phone) != step.phone || r.Registered(tablet) != step.tablet {
			t.Fatalf("%s: phone %v tablet %v, want %v %v", step.name,
				r.Registered(phone), r.Registered(tablet), step.phone, step.tablet)
		}
	}
	if len(r.devices) != 0 {
		t.Fatalf("devices left: %v", r.devices)
	}
}
