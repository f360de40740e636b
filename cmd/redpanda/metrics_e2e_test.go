package main

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redpanda-p2p/homenode/provisioning"
)

// scrapeMetrics reads the node's /metrics as a person's Prometheus does.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"metrics", nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// counter is the value of the counter name with label=value (label ""
// for none); absent is -1.
func counter(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f, ok := fams[name]
	if !ok || f.GetType() != dto.MetricType_COUNTER {
		return -1
	}
	for _, m := range f.GetMetric() {
		if label == "" {
			return m.GetCounter().GetValue()
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestMetricsCountWhatARealNodeDoes drives a real homenode with real
// clients: a refused and a good pairing, the owner's messages, a friend
// refused without a ticket and heard with one. Each shows in the
// counters of /metrics, and the status report counts the owner's
// conversation apart from the control channels.
func TestMetricsCountWhatARealNodeDoes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	n := startFreshNode(t)
	fams := scrapeMetrics(t, n.url)
	for _, name := range []string{"homenode_messages_received_total", "homenode_messages_stored_total",
		"homenode_messages_relayed_total", "homenode_messages_duplicate_total"} {
		if v := counter(fams, name, "", ""); v != 0 {
			t.Errorf("%s = %v on a new node, want 0", name, v)
		}
	}
	for _, c := range []struct{ name, label, value string }{
		{"homenode_messages_refused_total", "reason", "bad_signature"},
		{"homenode_registrations_total", "outcome", "ok"},
		{"homenode_pairing_attempts_total", "outcome", "paired"},
	} {
		if v := counter(fams, c.name, c.label, c.value); v != 0 {
			t.Errorf("%s{%s=%q} = %v on a new node, want 0 (present from the start)", c.name, c.label, c.value, v)
		}
	}

	alice, _ := newClient(t, "alice")
	bob, bobID := newClient(t, "bob")
	u, err := provisioning.ParseURI(n.uri)
	if err != nil {
		t.Fatal(err)
	}
	wrong := u
	rand.Read(wrong.Token[:])
	if _, _, err := rpTry("pair", wrong.String(), "--home", alice); err == nil {
		t.Fatal("pairing with a wrong token succeeded")
	}
	rp(t, "pair", n.uri, "--home", alice)
	key := strings.TrimSpace(rp(t, "channel", "new", "family", "--home", alice))
	rp(t, "send", "family", "hello", "--home", alice)

	// Bob without a ticket: his registration is refused, and so is a
	// message in a channel of his own, which the node does not serve.
	rp(t, "channel", "join", "family", key, "--home", bob)
	rp(t, "nodes", "add", n.addr, "--home", bob)
	rp(t, "channel", "new", "mine", "--home", bob)
	if _, e, err := rpTry("send", "mine", "let me in", "--home", bob); err == nil || !strings.Contains(e, "hop ticket") {
		t.Fatalf("bob's send without a ticket: %v %q", err, e)
	}
	fams = scrapeMetrics(t, n.url)
	for _, c := range []struct {
		name, label, value string
		min                float64
	}{
		{"homenode_pairing_attempts_total", "outcome", "rejected", 1},
		{"homenode_pairing_attempts_total", "outcome", "paired", 1},
		{"homenode_registrations_total", "outcome", "ok", 1},
		{"homenode_registrations_total", "outcome", "not_allowed", 1},
		{"homenode_messages_refused_total", "reason", "not_accepted", 1},
		{"homenode_messages_received_total", "", "", 2},
		{"homenode_messages_stored_total", "", "", 1},
		{"homenode_p2p_received_bytes_total", "", "", 1000},
		{"homenode_p2p_sent_bytes_total", "", "", 1000},
	} {
		if v := counter(fams, c.name, c.label, c.value); v < c.min {
			t.Errorf("%s{%s=%q} = %v, want at least %v", c.name, c.label, c.value, v, c.min)
		}
	}
	if v := counter(fams, "homenode_pairing_attempts_total", "outcome", "paired"); v != 1 {
		t.Errorf("paired attempts = %v, want exactly 1", v)
	}

	// With a ticket Bob registers and hears Alice: the node relays.
	rp(t, "ticket", "set", strings.TrimSpace(rp(t, "ticket", "issue", bobID, "--home", alice)), "--home", bob)
	listen := start(t, bins.redpanda, "listen", "--json", "--home", bob)
	// Alice asks until Bob's listen, connecting meanwhile, hears her (a
	// liveness bound, not a speed check).
	heard := false
	for deadline := time.Now().Add(60 * time.Second); !heard && time.Now().Before(deadline); {
		rp(t, "send", "family", "are you there?", "--home", alice)
		select {
		case l := <-listen.lines:
			heard = strings.Contains(l, `"text":"are you there?"`)
		case <-time.After(2 * time.Second):
		}
	}
	if !heard {
		t.Fatal("bob's listen never heard alice")
	}
	listen.stop(t)
	fams = scrapeMetrics(t, n.url)
	if v := counter(fams, "homenode_messages_relayed_total", "", ""); v < 1 {
		t.Errorf("relayed = %v after bob fetched alice's message, want at least 1", v)
	}
	if v := counter(fams, "homenode_registrations_total", "outcome", "ok"); v < 2 {
		t.Errorf("registrations ok = %v after bob registered, want at least 2", v)
	}

	// The report counts the conversation apart from the owner's control
	// channels (its node channel at least).
	out, err := exec.Command(bins.homenode, "status", "--json", "--config", "/dev/null", "--admin-socket", n.socket).Output()
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Channels []struct {
			ID       string `json:"id"`
			Messages int64  `json:"messages"`
			Control  bool   `json:"control"`
		} `json:"channels"`
		Messages struct {
			Count        int64 `json:"count"`
			ControlCount int64 `json:"control_count"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	var people, control, inPeople, inControl int64
	for _, c := range r.Channels {
		if c.Control {
			control++
			inControl += c.Messages
		} else {
			people++
			inPeople += c.Messages
		}
	}
	if people < 1 || control < 1 || r.Messages.Count != inPeople || r.Messages.ControlCount != inControl || inPeople < 1 {
		t.Errorf("report: %d people channel(s) with %d messages, %d control with %d; messages %+v", people, inPeople, control, inControl, r.Messages)
	}
}
