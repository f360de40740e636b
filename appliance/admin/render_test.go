package admin_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

func TestRender(t *testing.T) {
	now := statustest.Sample().GeneratedAt
	users := []status.User{
		{Identity: "owner", Hop: 0, Registered: now.Add(-48 * time.Hour)},
		{Identity: "eve", Hop: status.HopInfinity, Registered: now.Add(-time.Hour)},
	}
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
		want   []string
	}{
		{"peers", func(b *bytes.Buffer) error { return admin.RenderPeers(b, statustest.Sample().Peers.List) }, []string{
			"PEER", "LATENCY", statustest.Peer1 + "  outbound   23ms",
		}},
		{"no peers", func(b *bytes.Buffer) error { return admin.RenderPeers(b, nil) }, []string{"No peers connected."}},
		{"users", func(b *bytes.Buffer) error { return admin.RenderUsers(b, users, now) }, []string{
			"HOP  IDENTITY", "0    owner     -        2d 0h ago", "inf  eve",
		}},
		{"channels", func(b *bytes.Buffer) error { return admin.RenderChannels(b, statustest.Sample().Channels, now) }, []string{
			statustest.Channel + "  1,200", "5m 0s ago", "BLOCKED",
		}},
		{"revoked", func(b *bytes.Buffer) error { return admin.RenderRevoked(b, []string{"alice", "bob"}) }, []string{
			"Revoked 2 identities:", "  alice\n  bob\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestWriteJSONEmptyListsAreArrays(t *testing.T) {
	var b bytes.Buffer
	if err := admin.WriteJSON(&b, admin.RevokeResult{Revoked: []string{}}); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back["revoked"].([]any); !ok {
		t.Errorf("revoked is %T in %s", back["revoked"], b.String())
	}
}
