package owner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// The files in testdata were encoded by this protocol when it lived in
// appliance/owner with the report in appliance/status (commit a347f29):
// a phone and a node of either side of the move must read each other.
// A change that fails here is a change of the wire format (docs/BACKUP.md,
// docs/UPDATES.md), not a refactoring.

func pinnedUpdate() *status.Update {
	return &status.Update{Slot: "B", State: "writing", Version: "1.2-1", Percent: 45, Last: "updated to 1.1-1 (from 1.0-1)",
		LastAt: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC), Feed: "https://example.org/feed.json", Available: "1.2-1", DevKeys: true}
}

func pinnedReport() status.Report {
	r := statustest.Sample()
	r.Update = pinnedUpdate()
	return r
}

func pinned(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

func TestWireEncodingPinned(t *testing.T) {
	report, err := json.Marshal(pinnedReport())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := json.Marshal(Response{Result: report})
	if err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(Request{Cmd: "backup-put", Lookup: []byte{1, 2, 3}, Blob: []byte("blob"), Key: "rpw1k", Args: json.RawMessage(`{"feed":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(UpdateState{Update: *pinnedUpdate(), Settings: UpdateSettings{Feed: "f", Interval: "24h", Manual: true, Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		got  []byte
	}{
		{"status-report.json", report},
		{"status-response.json", resp},
		{"request.json", req},
		{"update-state.json", state},
	} {
		if want := pinned(t, c.file); !bytes.Equal(c.got, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", c.file, c.got, want)
		}
	}
}

// TestWireDecodingPinned: what an older node sent decodes to the same
// values on this side (the phone's half), through decodeResponse as
// Status does.
func TestWireDecodingPinned(t *testing.T) {
	raw, err := decodeResponse(pinned(t, "status-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got status.Report
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(got)
	if want := pinned(t, "status-report.json"); !bytes.Equal(again, want) {
		t.Errorf("the decoded report encodes differently:\n got %s\nwant %s", again, want)
	}
	if got.Node.PeerID != statustest.PeerID || got.Update == nil || got.Update.Percent != 45 || got.Counters.MessagesRefused["not_accepted"] != 97 {
		t.Errorf("decoded report lost fields: %+v", got)
	}
	var req Request
	if err := json.Unmarshal(pinned(t, "request.json"), &req); err != nil {
		t.Fatal(err)
	}
	if req.Cmd != "backup-put" || !bytes.Equal(req.Lookup, []byte{1, 2, 3}) || string(req.Blob) != "blob" || req.Key != "rpw1k" || string(req.Args) != `{"feed":"x"}` {
		t.Errorf("decoded request: %+v", req)
	}
}
