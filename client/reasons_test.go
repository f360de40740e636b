package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestUnreachableNodeIsOneLine: a node none of whose addresses answers is
// reported in one short line that names it and the cause, at Send and at
// Connect, and a dial libp2p refuses as "backing off" still says why the
// one before failed.
func TestUnreachableNodeIsOneLine(t *testing.T) {
	c := openClient(t, home(t, "c"))
	if _, err := c.Channels().Create("a"); err != nil {
		t.Fatal(err)
	}
	// A real node's identity at addresses where nothing listens: four
	// closed loopback ports, as a node with TCP and QUIC on IPv4 and
	// IPv6 would have.
	n := startNode(t, ownedBy(t, c.ID()))
	id := n.Host.ID()
	n.Close()
	var addrs []string
	for range 4 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, "/ip4/127.0.0.1/tcp/"+strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
		l.Close()
	}
	for _, a := range addrs {
		if _, err := c.Nodes().Add(a + "/p2p/" + id.String()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := c.Connect(ctx)
	cancel()
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Connect: %v, want ErrUnreachable", err)
	}
	for _, got := range []error{err, sendErr(t, c)} {
		msg := got.Error()
		if strings.Contains(msg, "\n") || len(msg) > 240 || !strings.Contains(msg, "unreachable") ||
			!strings.Contains(msg, "connection refused at 4 addresses") || !strings.Contains(msg, shortID(id)) {
			t.Errorf("error is not one short line naming the node and the cause (%d chars):\n%s", len(msg), msg)
		}
	}
	// The node record keeps the same line for `redpanda nodes`.
	ns, _ := c.Nodes().List()
	if len(ns) != 1 || !strings.Contains(ns[0].LastError, "connection refused") {
		t.Errorf("node record: %+v", ns)
	}
}

func sendErr(t *testing.T, c *Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Send(ctx, "a", "hello")
	if !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Send: %v, want ErrNotDelivered", err)
	}
	return err
}

// TestNotAcceptedSaysAskForATicket: a node that does not take a channel
// from this client (no registration there) is reported with what to do:
// ask the owner for a hop ticket, with the command and this client's ID.
func TestNotAcceptedSaysAskForATicket(t *testing.T) {
	owner := openClient(t, home(t, "owner"))
	friend := openClient(t, home(t, "friend"))
	n := startNode(t, ownedBy(t, owner.ID()))
	if _, err := friend.Channels().Create("a"); err != nil {
		t.Fatal(err)
	}
	addNodes(t, friend, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	friend.Connect(ctx) // unregistered: the node serves none of the friend's channels
	_, err := friend.Send(ctx, "a", "hello")
	if !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Send: %v, want ErrNotDelivered", err)
	}
	for _, want := range []string{"does not take this channel from you", "hop ticket", "redpanda ticket issue " + friend.ID(), "redpanda ticket set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	// With a ticket from the owner the same send goes through.
	ticket(t, owner, friend)
	connect(t, friend)
	if _, err := friend.Send(ctx, "a", "hello again"); err != nil {
		t.Fatalf("send with a ticket: %v", err)
	}
}

func TestShortCause(t *testing.T) {
	p, _ := peer.Decode("12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7")
	if got := shortID(p); got != "12D3KooW…to4Az7" {
		t.Errorf("shortID = %q", got)
	}
	long := errors.New("failed to negotiate security protocol: some library: " + strings.Repeat("x", 200) + "\n  * more")
	if got := shortCause(long); len([]rune(got)) > 80 || strings.Contains(got, "\n") {
		t.Errorf("shortCause of a long error = %q", got)
	}
}
