package web_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/redpanda-p2p/homenode/appliance/web"
	"github.com/redpanda-p2p/homenode/status"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// chromium runs headless Chromium with the flags this machine needs (no
// sandbox as root, no background networking on a closed network) and a
// fresh profile, returning stdout.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium); skipping the browser test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// serve runs the real server (Listen + Serve) on loopback for the test.
func serve(t *testing.T, r status.Report) string {
	t.Helper()
	ls, err := web.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	h := web.NewHandler(web.Options{Source: fixed(r, nil), Logger: slog.New(slog.DiscardHandler)})
	go func() { done <- web.Serve(ctx, ls, h, 5*time.Second, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ls[0].Addr().String() + "/"
}

// byID indexes the elements of a parsed DOM by id.
func byID(doc *html.Node) map[string]*html.Node {
	m := map[string]*html.Node{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if id := attr(n, "id"); id != "" {
				m[id] = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return m
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

func TestPageInChromium(t *testing.T) {
	tests := []struct {
		name   string
		report status.Report
		// id -> expected text, or "@attr=value" for an attribute.
		want map[string][]string
	}{
		{"owned", statustest.Sample(), map[string][]string{
			"peer-id":        {statustest.PeerID},
			"version":        {"v0.3.1"},
			"uptime":         {"3d 4h", "@data-seconds=274320"},
			"pairing":        {"@data-state=owned"},
			"pairing-state":  {"Paired"},
			"owner":          {statustest.OwnerID},
			"reach":          {"@data-reachable=true"},
			"reachability":   {"reachable via UPnP"},
			"external-addr":  {"203.0.113.7:4001"},
			"peer-count":     {"3", "@data-value=3"},
			"users-total":    {"7", "@data-value=7"},
			"messages-count": {"1,234", "@data-value=1234"},
			"channel-count":  {"2"},
			"control-count":  {"40", "@data-value=40", "@data-channels=1"},
			"disk-free":      {"12.0 GiB", "@data-value=12884901888"},
			"memory-rss":     {"41.0 MiB"},
			"cpu-temp":       {"61.5 °C", "@data-value=61.5"},
			"clock":          {"Synchronised", "@data-synchronized=true"},
			"warnings":       {"Under-voltage happened since boot: use the official power supply."},
			"power":          {"@data-under-voltage=false"},
		}},
		{"waiting", statustest.Waiting(), map[string][]string{
			"pairing":       {"@data-state=waiting"},
			"pairing-state": {"Waiting for pairing"},
			"pair-uri":      {statustest.Waiting().Pairing.URI},
			"pair-qr":       {"@width=320"},
			"reachability":  {"behind CGNAT"},
			"clock":         {"Not synchronised", "@data-synchronized=false"},
			"cpu-temp":      {"—"},
			"users-total":   {"0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, tt.report)
			dom := chromium(t, "--dump-dom", url)
			doc, err := html.Parse(bytes.NewReader(dom))
			if err != nil {
				t.Fatal(err)
			}
			ids := byID(doc)
			for id, wants := range tt.want {
				n, ok := ids[id]
				if !ok {
					t.Errorf("#%s missing from the DOM", id)
					continue
				}
				for _, w := range wants {
					if kv, ok := strings.CutPrefix(w, "@"); ok {
						k, v, _ := strings.Cut(kv, "=")
						if got := attr(n, k); got != v {
							t.Errorf("#%s[%s] = %q, want %q", id, k, got, v)
						}
					} else if got := text(n); got != w {
						t.Errorf("#%s text = %q, want %q", id, got, w)
					}
				}
			}
			if tt.report.Pairing.State == status.PairingWaiting {
				if src := attr(ids["pair-qr"], "src"); !strings.HasPrefix(src, "data:image/png;base64,") {
					t.Errorf("QR src %.40q is not an inline PNG", src)
				}
			}

			shot := filepath.Join(t.ArtifactDir(), "status-"+tt.name+".png")
			chromium(t, "--screenshot="+shot, "--window-size=412,1400", "--hide-scrollbars", url)
			b, err := os.ReadFile(shot)
			if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Fatalf("screenshot %s: %v", shot, err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}

func TestListenLAN(t *testing.T) {
	ls, err := web.Listen("lan:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	sawLoopback := false
	for _, l := range ls {
		ip := l.Addr().(*net.TCPAddr).IP
		if !ip.IsLoopback() && !ip.IsPrivate() {
			t.Errorf("listening on public address %v", ip)
		}
		sawLoopback = sawLoopback || ip.IsLoopback()
	}
	if !sawLoopback {
		t.Error("no loopback listener")
	}
}
