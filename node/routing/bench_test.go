package routing

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// BenchmarkChainVerify verifies a full 6-hop chain beside the single
// ed25519.Verify it is made of six of.
func BenchmarkChainVerify(b *testing.B) {
	owner := newIdentity(b)
	prev, chain := owner, Chain{}
	end := time.Now().Add(time.Hour)
	for hop := 1; hop <= MaxHop; hop++ {
		next := newIdentity(b)
		chain = append(chain, issue(b, prev, next.Public(), hop, end))
		prev = next
	}
	subject, now := prev.Public(), time.Now()
	b.Run("chain6", func(b *testing.B) {
		for b.Loop() {
			if hop, err := chain.Verify(owner.Public(), subject, now); err != nil || hop != MaxHop {
				b.Fatal(hop, err)
			}
		}
	})
	b.Run("ed25519.Verify", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		msg := make([]byte, 2*len(channel.IdentityKey{})+12)
		sig := ed25519.Sign(priv, msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
}
