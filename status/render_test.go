package status_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		r    status.Report
		want []string
	}{
		{"status owned", statustest.Sample(), []string{
			"Node:          " + statustest.PeerID,
			"Pairing:       owned by " + statustest.OwnerID,
			"Reachability:  reachable via UPnP 203.0.113.7:4001",
			"Users:         7 (hop 0: 1, hop 1: 3, hop 2: 1, hop inf: 2)",
			"Messages:      1,234 (3.1 MiB)",
			"Temperature:   61.5 °C",
			"Power:         fine now; trouble since boot",
			"Clock:         synchronised",
			"Warning:       Under-voltage happened since boot",
		}},
		{"status waiting", statustest.Waiting(), []string{
			"Pairing:       waiting for pairing: redpanda://pair?n=",
			"Clock:         NOT synchronised: timestamps not trusted yet",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := status.Render(&b, tt.r); err != nil {
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

// TestRenderHintContinuesReachability: the reachability hint is printed
// under the Reachability row, indented like a value, not as a row with an
// empty label (":").
func TestRenderHintContinuesReachability(t *testing.T) {
	r := statustest.Sample()
	r.Reachability.Hint = "forward the node's ports on the router by hand"
	var b bytes.Buffer
	if err := status.Render(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "\n               forward the node's ports on the router by hand\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("no indented hint line %q in:\n%s", want, b.String())
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), ":") {
			t.Fatalf("a row with an empty label: %q", l)
		}
	}
}
