package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// TestLogFloodIsSummarised runs the real daemon under a registration
// flood (chainless requests from fresh peer IDs on 20 source addresses,
// each refused "not allowed" and logged) and checks that its log holds a
// bounded number of those lines plus summaries, not one line per request.
// It logs the log's size and rate. REDPANDA_LOG_FLOOD sets the number of
// requests (default 600).
func TestLogFloodIsSummarised(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	total := 600
	if v := os.Getenv("REDPANDA_LOG_FLOOD"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	owner, _ := channel.NewIdentity(rand.Reader)
	d := startDaemon(t, t.TempDir(), nil, "--owner", owner.Public().String())
	ai, err := peer.AddrInfoFromString(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	const addrs, perPeer = 20, 5
	start := time.Now()
	var next sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if sent >= total {
					next.Unlock()
					return
				}
				sent += perPeer
				next.Unlock()
				h, err := libp2p.New(libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/127.0.0.%d/tcp/0", 2+a)), libp2p.DisableRelay())
				if err != nil {
					t.Error(err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if h.Connect(ctx, *ai) == nil {
					for range perPeer {
						id, _ := channel.NewIdentity(rand.Reader)
						routing.Register(ctx, h, ai.ID, id, nil, nil)
					}
				}
				cancel()
				h.Close()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := d.stop(t); err != nil {
		t.Fatalf("homenode exited with %v", err)
	}
	log := d.stderr.String()
	refused := strings.Count(log, `msg="registration refused"`)
	summaries := strings.Count(log, "similar log lines suppressed")
	t.Logf("%d requests in %s: log %d bytes (%.0f bytes/min during the flood), %d \"registration refused\" lines, %d summaries",
		total, took.Round(time.Millisecond), len(log), float64(len(log))/took.Minutes(), refused, summaries)
	// Per message: a burst of 50, then one a second (internal/logthrottle).
	if max := 50 + int(took.Seconds()) + 1; refused > max {
		t.Fatalf("%d \"registration refused\" lines for %d requests in %s, want at most %d", refused, total, took, max)
	}
	if summaries == 0 {
		t.Fatal("no summary of the suppressed lines")
	}
}
