package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redpanda-p2p/homenode/appliance/metrics"
	"github.com/redpanda-p2p/homenode/appliance/web"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// fixed is a source that always reports r (or err).
func fixed(r status.Report, err error) status.Source {
	return status.SourceFunc(func(context.Context) (status.Report, error) { return r, err })
}

func newServer(t *testing.T, src status.Source, health func(context.Context) error) *httptest.Server {
	t.Helper()
	reg, err := metrics.NewRegistry(src)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.NewHandler(web.Options{
		Source: src, Gatherer: reg, Health: health, Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestRoutes(t *testing.T) {
	owned := newServer(t, fixed(statustest.Sample(), nil), nil)
	waiting := newServer(t, fixed(statustest.Waiting(), nil), nil)
	broken := newServer(t, fixed(status.Report{}, errors.New("store closed")), nil)
	sick := newServer(t, fixed(statustest.Sample(), nil), func(context.Context) error { return errors.New("sync loop wedged") })

	tests := []struct {
		name     string
		url      string
		code     int
		ctype    string
		contains string
	}{
		{"page", owned.URL + "/", 200, "text/html", statustest.PeerID},
		{"json", owned.URL + "/status.json", 200, "application/json", `"peer_id": "` + statustest.PeerID},
		{"healthz", owned.URL + "/healthz", 200, "text/plain", "ok"},
		{"healthz failing check", sick.URL + "/healthz", 503, "text/plain", "sync loop wedged"},
		{"healthz failing report", broken.URL + "/healthz", 503, "text/plain", "store closed"},
		{"page failing report", broken.URL + "/", 503, "text/plain", "store closed"},
		{"no pairing once owned", owned.URL + "/pair.png", 404, "text/plain", "not waiting"},
		{"pair png", waiting.URL + "/pair.png", 200, "image/png", "\x89PNG"},
		{"waiting page has inline QR", waiting.URL + "/", 200, "text/html", `src="data:image/png;base64,`},
		{"unknown path", owned.URL + "/admin", 404, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.url)
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if !bytes.Contains(body, []byte(tt.contains)) {
				t.Errorf("body lacks %q:\n%.400s", tt.contains, body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

func TestStatusJSONRoundTrip(t *testing.T) {
	srv := newServer(t, fixed(statustest.Sample(), nil), nil)
	_, body := get(t, srv.URL+"/status.json")
	var r status.Report
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if got, want := status.StatusLine(r), status.StatusLine(statustest.Sample()); got != want {
		t.Errorf("status.json decodes to %q, want %q", got, want)
	}
}

func TestPairPNGIsTheURI(t *testing.T) {
	srv := newServer(t, fixed(statustest.Waiting(), nil), nil)
	_, body := get(t, srv.URL+"/pair.png")
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != web.QRSize || b.Dy() != web.QRSize {
		t.Errorf("QR is %v, want %dx%d", b, web.QRSize, web.QRSize)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	srv := newServer(t, fixed(statustest.Sample(), nil), nil)
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
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
	for name, want := range map[string]float64{
		"homenode_peers":              3,
		"homenode_warnings":           1,
		"homenode_clock_synchronized": 1,
		"homenode_disk_free_bytes":    12 << 30,
	} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got := f.GetMetric()[0].GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// A failing report must not take the Go and process metrics down with it.
func TestMetricsSurviveReportError(t *testing.T) {
	srv := newServer(t, fixed(status.Report{}, errors.New("store closed")), nil)
	resp, body := get(t, srv.URL+"/metrics")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("go_goroutines")) {
		t.Errorf("status %d, body:\n%.300s", resp.StatusCode, body)
	}
	if bytes.Contains(body, []byte("homenode_peers ")) {
		t.Error("homenode_peers served although the report failed")
	}
}
