package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redpanda-p2p/homenode/appliance/metrics"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// scrape serves the registry over real HTTP and parses the text format.
func scrape(t *testing.T, r status.Report) map[string]*dto.MetricFamily {
	t.Helper()
	reg, err := metrics.NewRegistry(status.SourceFunc(func(context.Context) (status.Report, error) { return r, nil }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain") // the classic text format, not protobuf
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

// value finds the gauge of name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	type want struct {
		name    string
		labels  map[string]string
		value   float64
		absent  bool
		counter bool
	}
	tests := []struct {
		name   string
		report status.Report
		want   []want
	}{
		{"owned", statustest.Sample(), []want{
			{name: "homenode_peers", value: 3},
			{name: "homenode_users", labels: map[string]string{"hop": "0"}, value: 1},
			{name: "homenode_users", labels: map[string]string{"hop": "1"}, value: 3},
			{name: "homenode_users", labels: map[string]string{"hop": "6"}, value: 0},
			{name: "homenode_users", labels: map[string]string{"hop": "inf"}, value: 2},
			{name: "homenode_store_messages", labels: map[string]string{"kind": "people"}, value: 1234},
			{name: "homenode_store_messages", labels: map[string]string{"kind": "control"}, value: 40},
			{name: "homenode_store_bytes", labels: map[string]string{"kind": "people"}, value: 3<<20 + 81920},
			{name: "homenode_store_bytes", labels: map[string]string{"kind": "control"}, value: 20480},
			{name: "homenode_channels_served", labels: map[string]string{"kind": "people"}, value: 2},
			{name: "homenode_channels_served", labels: map[string]string{"kind": "control"}, value: 1},
			{name: "homenode_messages_received_total", value: 5000, counter: true},
			{name: "homenode_messages_stored_total", value: 4000, counter: true},
			{name: "homenode_messages_duplicate_total", value: 900, counter: true},
			{name: "homenode_messages_relayed_total", value: 7000, counter: true},
			{name: "homenode_messages_refused_total", labels: map[string]string{"reason": "not_accepted"}, value: 97, counter: true},
			{name: "homenode_registrations_total", labels: map[string]string{"outcome": "bad_chain"}, value: 2, counter: true},
			{name: "homenode_pairing_attempts_total", labels: map[string]string{"outcome": "rejected"}, value: 4, counter: true},
			{name: "homenode_p2p_received_bytes_total", value: 1 << 30, counter: true},
			{name: "homenode_p2p_sent_bytes_total", value: 2 << 30, counter: true},
			{name: "homenode_disk_free_bytes", value: 12 << 30},
			{name: "homenode_disk_total_bytes", value: 29 << 30},
			{name: "homenode_cpu_temperature_celsius", value: 61.5},
			{name: "homenode_throttled", labels: map[string]string{"flag": "under_voltage_occurred"}, value: 1},
			{name: "homenode_throttled", labels: map[string]string{"flag": "under_voltage"}, value: 0},
			{name: "homenode_clock_synchronized", value: 1},
			{name: "homenode_pairing_state", labels: map[string]string{"state": "owned"}, value: 1},
			{name: "homenode_pairing_state", labels: map[string]string{"state": "waiting"}, value: 0},
			{name: "homenode_reachable", value: 1},
			{name: "homenode_warnings", value: 1},
			{name: "homenode_build_info", labels: map[string]string{"version": "v0.3.1", "peer_id": statustest.PeerID}, value: 1},
			{name: "homenode_uptime_seconds", value: (76*60 + 12) * 60},
		}},
		{"waiting, no sensors", statustest.Waiting(), []want{
			{name: "homenode_pairing_state", labels: map[string]string{"state": "waiting"}, value: 1},
			{name: "homenode_pairing_state", labels: map[string]string{"state": "owned"}, value: 0},
			{name: "homenode_clock_synchronized", value: 0},
			{name: "homenode_reachable", value: 0},
			{name: "homenode_users", labels: map[string]string{"hop": "inf"}, value: 0},
			{name: "homenode_cpu_temperature_celsius", absent: true},
			{name: "homenode_throttled", absent: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fams := scrape(t, tt.report)
			for _, w := range tt.want {
				got, ok := value(fams, w.name, w.labels)
				if ok && w.counter != (fams[w.name].GetType() == dto.MetricType_COUNTER) {
					t.Errorf("%s has type %v", w.name, fams[w.name].GetType())
				}
				switch {
				case w.absent && ok:
					t.Errorf("%s present (%v), want absent", w.name, got)
				case !w.absent && !ok:
					t.Errorf("%s%v missing", w.name, w.labels)
				case !w.absent && got != w.value:
					t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
				}
			}
			for _, runtime := range []string{"go_goroutines", "process_resident_memory_bytes"} {
				if _, ok := fams[runtime]; !ok {
					t.Errorf("%s missing: Go/process collectors not registered", runtime)
				}
			}
		})
	}
}

func TestReportErrorFailsGather(t *testing.T) {
	boom := errors.New("store closed")
	reg, err := metrics.NewRegistry(status.SourceFunc(func(context.Context) (status.Report, error) { return status.Report{}, boom }))
	if err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if !errors.Is(err, boom) {
		t.Errorf("Gather error = %v, want it to wrap %v", err, boom)
	}
	if len(fams) == 0 {
		t.Error("Go/process metrics should still be gathered")
	}
}
