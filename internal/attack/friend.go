package attack

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// FriendChannel is the channel the friend sends on.
const FriendChannel = "family"

// Friend is a real client (the client SDK a phone embeds) that sends
// messages through the node and measures each send's round trip: from
// Send until the node acknowledged the message as durable.
type Friend struct {
	C   *client.Client
	Key string // the channel's key string, to share with a reader

	mu      sync.Mutex
	lat     []time.Duration
	acked   []string
	failed  []string
	stopped chan struct{}
	done    chan struct{}
}

// NewFriend opens a client in a fresh home under dir. Call Join once the
// node runs.
func NewFriend(dir, name string) (*Friend, error) {
	c, err := client.Open(client.Config{Home: filepath.Join(dir, name), Create: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("attack.NewFriend: %w", err)
	}
	key, err := c.Channels().Create(FriendChannel)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("attack.NewFriend: %w", err)
	}
	return &Friend{C: c, Key: key}, nil
}

// Join adds the node and connects (registering).
func (f *Friend) Join(ctx context.Context, addr string) error {
	if _, err := f.C.Nodes().Add(addr); err != nil {
		return fmt.Errorf("attack: add node: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.C.Connect(cctx); err != nil {
		return fmt.Errorf("attack: friend connect: %w", err)
	}
	return nil
}

// Send sends one message and records its round trip.
func (f *Friend) Send(ctx context.Context, text string) (time.Duration, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	res, err := f.C.Send(sctx, FriendChannel, text)
	d := time.Since(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.failed = append(f.failed, err.Error())
		return d, err
	}
	f.lat = append(f.lat, d)
	f.acked = append(f.acked, res.ID)
	return d, nil
}

// StartSending sends a message every interval until StopSending.
func (f *Friend) StartSending(ctx context.Context, every time.Duration) {
	f.mu.Lock()
	f.lat, f.failed = nil, nil
	f.stopped, f.done = make(chan struct{}), make(chan struct{})
	f.mu.Unlock()
	go func() {
		defer close(f.done)
		for i := 0; ; i++ {
			_, _ = f.Send(ctx, fmt.Sprintf("during the attack %d", i))
			select {
			case <-f.stopped:
				return
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
}

// StopSending stops the sender and returns the latencies and failures of
// the sends since StartSending.
func (f *Friend) StopSending() ([]time.Duration, []string) {
	close(f.stopped)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lat), slices.Clone(f.failed)
}

// Acked is every message ID the node acknowledged to this friend.
func (f *Friend) Acked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acked)
}

// Close closes the client.
func (f *Friend) Close() error { return f.C.Close() }

// Reader is another member of the friend's channel, on a fresh device with
// nothing stored: what it gets from the node is what the node kept.
type Reader struct{ C *client.Client }

// NewReader opens a client that joins the friend's channel with a ticket
// from the friend (hop 1) and connects to the node.
func NewReader(ctx context.Context, dir, name string, f *Friend, addr string) (*Reader, error) {
	c, err := client.Open(client.Config{Home: filepath.Join(dir, name), Create: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	r := &Reader{C: c}
	chain, err := f.C.Tickets().Issue(c.ID(), 1)
	if err == nil {
		_, err = c.Tickets().Set(chain)
	}
	if err == nil {
		_, err = c.Channels().Join(FriendChannel, f.Key)
	}
	if err == nil {
		_, err = c.Nodes().Add(addr)
	}
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = c.Connect(cctx)
		cancel()
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("attack.NewReader: %w", err)
	}
	return r, nil
}

// Missing waits, up to a liveness bound, for every id in want to reach
// the reader from the node, and returns those that never did.
func (r *Reader) Missing(ctx context.Context, want []string) []string {
	deadline := time.Now().Add(90 * time.Second)
	for {
		msgs, _ := r.C.History(FriendChannel, 1<<20)
		have := map[string]bool{}
		for _, m := range msgs {
			have[m.ID] = true
		}
		var missing []string
		for _, id := range want {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return missing
		}
		time.Sleep(250 * time.Millisecond)
	}
}
