package status_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

func TestStatusLine(t *testing.T) {
	owned := statustest.Sample()
	owned.Warnings = nil
	waiting := statustest.Waiting()
	fresh := statustest.Waiting()
	fresh.Pairing = status.Pairing{State: status.PairingNew}
	fresh.Reachability = status.Reachability{}
	fresh.Peers = status.Peers{Count: 1}
	fresh.Clock.Synchronized = true
	newline := statustest.Sample()
	newline.Reachability.Diagnosis = "odd\nrouter"
	newline.Warnings = []string{"a", "b"}

	tests := []struct {
		name string
		r    status.Report
		want string
	}{
		{"owned", owned, "owned by 12D3KooW…JsNK; reachable via UPnP 203.0.113.7:4001; 3 peers; 7 users; 1,234 messages"},
		{"waiting", waiting, "waiting for pairing; behind CGNAT; 3 peers; 0 users; 0 messages; clock not synchronised"},
		{"new", fresh, "starting, not paired; 1 peer; 0 users; 0 messages"},
		{"newline and warnings", newline, "owned by 12D3KooW…JsNK; odd router 203.0.113.7:4001; 3 peers; 7 users; 1,234 messages; 2 warnings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// ShortID keeps 6 tail characters.
			want := strings.ReplaceAll(tt.want, "…JsNK", "…"+statustest.OwnerID[len(statustest.OwnerID)-6:])
			if got := status.StatusLine(tt.r); got != want {
				t.Errorf("StatusLine\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"}, {-12345, "-12,345"}, {100000, "100,000"}} {
		if got := status.Thousands(tt.n); got != tt.want {
			t.Errorf("Thousands(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{status.Bytes(512), "512 B"},
		{status.Bytes(1536), "1.5 KiB"},
		{status.Bytes(12 << 30), "12.0 GiB"},
		{status.Duration(0), "—"},
		{status.Duration(42 * time.Millisecond), "42ms"},
		{status.Duration(90 * time.Second), "1m 30s"},
		{status.Duration(3*24*time.Hour + 4*time.Hour), "3d 4h"},
		{status.ShortID("short"), "short"},
		{status.ShortID(statustest.PeerID), "12D3KooW…z1c5bU"},
		{status.HopInfinity.String(), "inf"},
		{status.Hop(2).String(), "2"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestUsers(t *testing.T) {
	u := statustest.Sample().Users
	if got := u.Total(); got != 7 {
		t.Errorf("Total = %d, want 7", got)
	}
	for _, tt := range []struct {
		h    status.Hop
		want int
	}{{0, 1}, {1, 3}, {6, 0}, {status.HopInfinity, 2}, {7, 0}, {-2, 0}} {
		if got := u.Count(tt.h); got != tt.want {
			t.Errorf("Count(%v) = %d, want %d", tt.h, got, tt.want)
		}
		if tt.h.Valid() != (tt.h >= -1 && tt.h <= status.MaxHop) {
			t.Errorf("Valid(%v) wrong", tt.h)
		}
	}
	if hs := status.Hops(); len(hs) != 8 || hs[7] != status.HopInfinity {
		t.Errorf("Hops = %v", hs)
	}
}

// The JSON names are what scripts read from `homenode status --json`.
func TestReportJSONRoundTrip(t *testing.T) {
	r := statustest.Sample()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"peer_id"`, `"state":"owned"`, `"by_hop":[1,3,1,0,0,0,0]`, `"cpu_temp_celsius":61.5`, `"synchronized":true`, `"free_bytes"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var back status.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if status.StatusLine(back) != status.StatusLine(r) || *back.CPUTempCelsius != 61.5 || back.Channels[0].Newest != r.Channels[0].Newest {
		t.Errorf("round trip lost data: %+v", back)
	}
	w, _ := json.Marshal(statustest.Waiting())
	if strings.Contains(string(w), "cpu_temp_celsius") {
		t.Errorf("unknown temperature must be omitted: %s", w)
	}
}

// TestUpdateLineNotCommitted: a commit step that failed on a boot that was
// not a trial is shown with its reason (the board stayed up).
func TestUpdateLineNotCommitted(t *testing.T) {
	u := &status.Update{Slot: "A", State: "not committed", Version: "1.0-1", Detail: "the boot disk: permission denied"}
	got := u.Line()
	for _, want := range []string{"1.0-1 not committed at boot", "the boot disk: permission denied"} {
		if !strings.Contains(got, want) {
			t.Errorf("Line() = %q, want it to contain %q", got, want)
		}
	}
	if u.Busy() {
		t.Error("a failed commit step counts as busy: updates would be held back")
	}
}
