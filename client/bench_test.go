package client

import (
	"context"
	"testing"
)

// BenchmarkSend measures Send: seal, local durable store, push to one
// node on loopback and wait for its durable ack. The baseline is
// BenchmarkSendLocal, the same Send with no node (seal and local store).
func BenchmarkSend(b *testing.B) {
	c, err := Open(Config{Home: b.TempDir() + "/a", Create: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.Channels().Create("bench")
	n := startNodeB(b, c.ID())
	if _, err := c.Nodes().Add(n); err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Send(ctx, "bench", "a benchmark message of a typical chat length"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendLocal is Send with no node known: the local part alone.
func BenchmarkSendLocal(b *testing.B) {
	c, err := Open(Config{Home: b.TempDir() + "/a", Create: true, Logger: quiet(), NoReceipts: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.Channels().Create("bench")
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Send(ctx, "bench", "a benchmark message of a typical chat length"); err == nil {
			b.Fatal("delivered with no node")
		}
	}
}
