package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// TestFriendsCommands: `friends accept` (Bob) and `friends agree` (Alice)
// run as commands against one real node, through two friends whose
// clients are running; both print the same channel and safety code.
func TestFriendsCommands(t *testing.T) {
	cn := newClientNet(t)
	open := cn.open
	alice, bob := open("alice"), open("bob")
	cn.start(alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var friends []*client.Client
	for i := range 2 {
		f := open(fmt.Sprintf("friend%d", i))
		friends = append(friends, f)
		name := fmt.Sprintf("f%d", i)
		k, err := alice.Channels().Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Channels().Join("alice", k); err != nil {
			t.Fatal(err)
		}
		if k, err = f.Channels().Create("bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Channels().Join(name, k); err != nil {
			t.Fatal(err)
		}
	}
	cn.connect(ctx, alice, append([]*client.Client{alice, bob}, friends...)...)
	for i, f := range friends {
		if _, err := bob.Send(ctx, fmt.Sprintf("f%d", i), "hello from bob"); err != nil {
			t.Fatal(err)
		}
		for {
			h, _ := f.History("bob", 0)
			if len(h) > 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("Bob's message never reached a friend")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	aliceID, bobID := alice.ID(), bob.ID()
	alice.Close() // the commands open these homes themselves
	bob.Close()

	type out struct {
		stdout string
		err    error
	}
	bobOut := make(chan out, 1)
	go func() {
		o, _, err := runCLI("friends", "accept", "alice", "--from", aliceID, "--home", cn.home("bob"), "--timeout", "50s")
		bobOut <- out{o, err}
	}()
	aOut, _, err := runCLI("friends", "agree", "bob", "--with", bobID, "--via", "f0,f1", "--home", cn.home("alice"), "--timeout", "50s")
	if err != nil {
		t.Fatal(err)
	}
	b := <-bobOut
	if b.err != nil {
		t.Fatal(b.err)
	}
	if code := field(t, aOut, "safety code"); code == "" || code != field(t, b.stdout, "safety code") {
		t.Fatalf("codes differ:\n%s\n%s", aOut, b.stdout)
	}

	for _, args := range [][]string{
		{"friends", "agree", "x", "--home", cn.home("alice")},
		{"friends", "accept", "x", "--home", cn.home("bob")},
	} {
		if _, _, err := runCLI(args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
