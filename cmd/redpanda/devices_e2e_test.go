package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// rpClean runs the redpanda binary and fails if it reports anything
// left undone in the background on stderr (the field bug: `master
// channel: not posted … context canceled`).
func rpClean(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := rpTry(args...)
	if err != nil {
		t.Fatalf("redpanda %v: %v\nstdout: %s\nstderr: %s", args, err, out, errOut)
	}
	for _, bad := range []string{"not posted", "context canceled", "not delivered", "level=WARN", "level=ERROR"} {
		if strings.Contains(errOut, bad) {
			t.Fatalf("redpanda %v printed %q on stderr:\n%s", args, bad, errOut)
		}
	}
	return out
}

func channelList(t *testing.T, home string) []string {
	t.Helper()
	var chs []struct{ Name string }
	if err := json.Unmarshal([]byte(rp(t, "channel", "list", "--json", "--home", home)), &chs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chs {
		out = append(out, c.Name)
	}
	return out
}

// TestLinkedDeviceThroughTheBinaries is issue 18's device scenario with
// the real binaries in separate processes: the phone pairs a fresh
// `homenode run`, makes a channel and links a desktop. The desktop, given
// only the link string, lists the channel and the node and hears messages
// in it; channels the phone makes, joins and leaves afterwards, each by a
// one-shot command that exits at once, reach the desktop (so the node
// really holds each announcement), and no command leaves work undone.
func TestLinkedDeviceThroughTheBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	n := startFreshNode(t)
	phone, phoneID := newClient(t, "phone")
	rpClean(t, "pair", n.uri, "--home", phone)
	rpClean(t, "channel", "new", "fam", "--home", phone)
	link := strings.TrimSpace(rpClean(t, "device", "link", "--home", phone))

	desk := t.TempDir() + "/desk"
	if id := strings.TrimSpace(rpClean(t, "device", "join", link, "--name", "desktop", "--home", desk)); id != phoneID {
		t.Fatalf("the desktop is %s, the phone %s", id, phoneID)
	}
	if got := channelList(t, desk); !slices.Equal(got, []string{"fam"}) {
		t.Fatalf("desktop channels %v, want [fam]", got)
	}
	var nodes []struct {
		ID         string
		Hop        int
		Registered bool
	}
	if err := json.Unmarshal([]byte(rp(t, "nodes", "--json", "--home", desk)), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].ID != n.peerID || !nodes[0].Registered || nodes[0].Hop != 0 {
		t.Fatalf("desktop nodes %+v, want the phone's node %s, registered at hop 0", nodes, n.peerID)
	}

	listen := start(t, bins.redpanda, "listen", "--json", "--home", desk)
	rpClean(t, "send", "fam", "hello desktop", "--home", phone)
	if m := listen.message(t); m.Text != "hello desktop" || m.Channel != "fam" || !m.Mine {
		t.Fatalf("desktop heard %+v", m)
	}

	// Later changes, each a command that exits right away.
	rpClean(t, "channel", "new", "work", "--home", phone)
	rpClean(t, "channel", "leave", "work", "--home", phone)
	friend, _ := newClient(t, "friend")
	clubKey := strings.TrimSpace(rp(t, "channel", "new", "club", "--home", friend))
	rpClean(t, "channel", "join", "club", clubKey, "--home", phone)
	rpClean(t, "channel", "new", "later", "--home", phone)
	rpClean(t, "send", "later", "made later", "--home", phone)
	rpClean(t, "send", "club", "in the club", "--home", phone)
	heard := map[string]string{}
	for len(heard) < 2 {
		m := listen.message(t)
		heard[m.Channel] = m.Text
	}
	if heard["later"] != "made later" || heard["club"] != "in the club" {
		t.Fatalf("desktop heard %v", heard)
	}
	listen.stop(t)
	if got := channelList(t, desk); !slices.Equal(got, []string{"club", "fam", "later"}) {
		t.Fatalf("desktop channels %v, want [club fam later] (work left on the phone)", got)
	}
}
