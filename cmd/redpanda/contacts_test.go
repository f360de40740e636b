package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// TestContactsCommands: Bob vouches for Carol's number with `contacts
// add`; Alice runs `contacts find` with the number written her way, and
// Bob's running client answers: she gets Carol's identity and the exact
// `friends agree` command. Misuse and bad numbers fail clearly.
func TestContactsCommands(t *testing.T) {
	cn := newClientNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	open := cn.open
	alice, bob, carol := open("alice"), open("bob"), open("carol")
	cn.start(alice)
	shareCh := func(a *client.Client, an string, b *client.Client, bn string) {
		k, err := a.Channels().Create(an)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Channels().Join(bn, k); err != nil {
			t.Fatal(err)
		}
	}
	shareCh(alice, "bob", bob, "alice")
	shareCh(bob, "carol", carol, "bob")
	cn.connect(ctx, alice, alice, bob, carol)
	if _, err := carol.Send(ctx, "bob", "hi bob"); err != nil {
		t.Fatal(err)
	}
	for {
		h, _ := bob.History("carol", 0)
		if len(h) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("Carol's message never reached Bob")
		}
		time.Sleep(20 * time.Millisecond)
	}
	aliceHome, bobHome := cn.home("alice"), cn.home("bob")
	bob.Close()
	alice.Close()

	// As docs/CONTACTS.md types it: the number in several words.
	out, _, err := runCLI("contacts", "add", "carol", "+49", "151", "23456789", "--home", bobHome)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, out, "identity"); got != carol.ID() {
		t.Fatalf("contacts add: identity %q, want Carol's %q", got, carol.ID())
	}
	if out, _, err = runCLI("contacts", "list", "--home", bobHome); err != nil || !strings.Contains(out, "+4915123456789") {
		t.Fatalf("contacts list: %v\n%s", err, out)
	}

	// Bob's client runs (as `redpanda listen` would) and answers.
	bob = open("bob")
	if err := bob.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI("contacts", "find", "0151", "2345", "6789", "--cc", "49", "--name", "carol", "--wait", "60s", "--home", aliceHome)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, out, "identity"); got != carol.ID()+" via bob" {
		t.Fatalf("contacts find: identity %q\n%s", got, out)
	}
	if got := field(t, out, "agree"); got != "redpanda friends agree carol --with "+carol.ID()+" --via bob" {
		t.Fatalf("contacts find: agree %q", got)
	}
	if strings.Contains(out, "conflict") {
		t.Fatalf("no conflict expected:\n%s", out)
	}
	bob.Close()

	if out, _, err = runCLI("contacts", "remove", "carol", "--home", bobHome); err != nil || field(t, out, "removed") != "1" {
		t.Fatalf("contacts remove: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"contacts", "add", "carol", "--home", bobHome}, errUsage},
		{[]string{"contacts", "find", "--home", aliceHome}, errUsage},
		{[]string{"contacts", "add", "carol", "0151 23456789", "--home", bobHome}, client.ErrBadContact}, // national, no --cc
		{[]string{"contacts", "find", "not a number", "--home", aliceHome}, client.ErrBadContact},
		{[]string{"contacts", "remove", "+49 151 23456789", "--home", bobHome}, client.ErrNoContact},
	} {
		if _, _, err := runCLI(tc.args...); !errors.Is(err, tc.want) {
			t.Errorf("%v: %v, want %v", tc.args, err, tc.want)
		}
	}
}
