package web_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/metrics"
	"github.com/redpanda-p2p/homenode/appliance/web"
	"github.com/redpanda-p2p/homenode/status/statustest"
)

// rawGet sends one HTTP/1.1 request with the given Host header over a
// real TCP connection to addr (so the header is exactly what a browser
// under DNS rebinding would send) and returns the status code and body.
func rawGet(t *testing.T, addr, path, host string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\n"
	if host != "\x00" { // "\x00": send no Host header at all
		req += "Host: " + host + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s Host %q: %v", path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHostHeader: every endpoint answers an IP literal or one of the
// box's names, and refuses every other Host — the names a DNS-rebinding
// page would send — before it reveals anything.
func TestHostHeader(t *testing.T) {
	src := fixed(statustest.Waiting(), nil)
	// The pairing token, as it appears in every form (page, JSON, QR).
	_, uri, _ := strings.Cut(statustest.Waiting().Pairing.URI, "t=")
	reg, err := metrics.NewRegistry(src)
	if err != nil {
		t.Fatal(err)
	}
	h := web.NewHandler(web.Options{Source: src, Gatherer: reg, Logger: slog.New(slog.DiscardHandler),
		Hosts: web.HostNames("homenode.fritz.box.")})
	ls, err := web.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ls[0])
	t.Cleanup(func() { srv.Close() })
	addr := ls[0].Addr().String()
	port := ls[0].Addr().(*net.TCPAddr).Port
	hostname := web.HostNames()[1]
	label, _, _ := strings.Cut(hostname, ".")

	allowed := []string{
		addr, "127.0.0.1", "192.168.178.23:8080", "10.0.0.2",
		fmt.Sprintf("[::1]:%d", port), "[fe80::1]", "[2001:db8::7]:80",
		"localhost", fmt.Sprintf("localhost:%d", port), "LOCALHOST.", "localhost.:8080",
		hostname, label + ".local", strings.ToUpper(label) + ".LOCAL:8080",
		"homenode.fritz.box", "HomeNode.Fritz.Box.:8080",
	}
	refused := []string{
		"", "\x00", // empty Host, no Host (HTTP/1.1 requires one: Go answers 400)
		"evil.example", "evil.example:" + fmt.Sprint(port), "rebind.attacker.test",
		"127.0.0.1.nip.io", "localhost.evil.example", label + ".local.evil.example",
		"::1", "[127.0.0.1]", "[::1", "1.2.3.4:", "0x7f.1", "2130706433", "127.1",
		"homenode.fritz.box.evil", "xn--localhost",
	}
	paths := []string{"/", "/status.json", "/pair.png", "/metrics", "/healthz", "/nonexistent"}
	for _, p := range paths {
		for _, host := range allowed {
			code, body := rawGet(t, addr, p, host)
			if code == http.StatusMisdirectedRequest || code == http.StatusBadRequest {
				t.Errorf("GET %s Host %q: %d %q, want it served", p, host, code, body)
			}
		}
		for _, host := range refused {
			code, body := rawGet(t, addr, p, host)
			if code != http.StatusMisdirectedRequest && code != http.StatusBadRequest {
				t.Errorf("GET %s Host %q: %d, want 421 (or 400)", p, host, code)
			}
			if strings.Contains(body, uri) || strings.Contains(body, "\x89PNG") || strings.Contains(body, "go_goroutines") {
				t.Errorf("GET %s Host %q leaked: %.80q", p, host, body)
			}
		}
	}
	// The status page itself, through an allowed name, still carries the
	// pairing URI: the check refuses names, not content.
	if code, body := rawGet(t, addr, "/status.json", "localhost"); code != 200 || !strings.Contains(body, uri) {
		t.Fatalf("allowed request: %d %.80q", code, body)
	}
}
