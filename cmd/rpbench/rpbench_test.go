package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

// TestMain lets the capacity scenario re-execute the test binary as its
// node process, as it does the rpbench binary.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleNode {
		if err := runNodeChild(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	testkit.VerifyTestMain(m)
}

// TestScenariosTiny runs every scenario at its smallest through the same
// entry point as the command, with --json, so the tool cannot rot: each
// must finish without error and report the figures its table promises.
func TestScenariosTiny(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-tiny", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out.String())
	}
	// Each scenario must report these figures, and each must be positive.
	want := map[string][]string{
		"ingest":   {"ed25519.Verify (all cores)", "push / verify", "publish / verify"},
		"capacity": {"registered idle clients", "node RSS per client"},
		"relay":    {"redpanda p99", "gossipsub p99", "p99 redpanda / gossipsub", "bytes/delivery redpanda / gossipsub"},
		"resync":   {"bytes / missed bytes", "bodies fetched"},
		"dht":      {"cold lookup median", "found >= 1 super node"},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(want))
	}
	for _, r := range rep.Results {
		t.Run(r.Scenario, func(t *testing.T) {
			if r.Error != "" {
				t.Fatalf("error: %s", r.Error)
			}
			got := map[string]float64{}
			for _, m := range r.Metrics {
				got[m.Name] = m.Value
			}
			for _, name := range want[r.Scenario] {
				if v, ok := got[name]; !ok || v <= 0 {
					t.Errorf("metric %q = %v (present %v), want > 0", name, v, ok)
				}
			}
		})
	}
}

// TestFlags: an unknown scenario is refused before anything runs.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"-scenarios", "nosuch"}, true},
		{[]string{"-bogus"}, true},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, &out)
		if (err != nil) != tc.wantErr {
			t.Errorf("run %v: err %v, want error %v", tc.args, err, tc.wantErr)
		}
	}
}
