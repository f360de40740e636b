package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// TestListenShowsRefusal: a client the node refuses to register (no
// ticket, a node that serves only its owner's friends) is told so by
// `redpanda listen`, with the node's reason, not only "connected".
func TestListenShowsRefusal(t *testing.T) {
	cn := newClientNet(t)
	alice := cn.open("alice")
	cn.start(alice)
	carol := cn.open("carol")
	if _, err := carol.Nodes().Add(cn.node.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	carol.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"listen", "--home", cn.home("carol")}, &out, &errOut) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errOut.String(), "did not register this client") {
		select {
		case err := <-done:
			t.Fatalf("listen ended: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen never said it was refused:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("listen: %v", err)
	}
	if s := errOut.String(); !strings.Contains(s, "not allowed") || !strings.Contains(s, cn.node.Host.ID().String()) {
		t.Fatalf("the refusal lacks the node or its reason:\n%s", s)
	}
}
