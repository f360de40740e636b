package web_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/redpanda-p2p/homenode/status/statustest"
)

// TestRebindingInChromium: a real browser that resolves an attacker's
// name to the box — what DNS rebinding makes it do — gets a refusal from
// every endpoint, not the pairing URI; the same browser reaching the box
// by IP address or localhost gets the page.
func TestRebindingInChromium(t *testing.T) {
	base := serve(t, statustest.Waiting())
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	_, token, _ := strings.Cut(statustest.Waiting().Pairing.URI, "t=")
	// Chromium resolves rebind.attacker.test to the box's address, as a
	// rebinding DNS server would make it.
	rules := "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1"
	attacker := "http://rebind.attacker.test:" + u.Port()

	for _, path := range []string{"/", "/status.json", "/pair.png", "/healthz"} {
		dom := string(chromium(t, rules, "--dump-dom", attacker+path))
		if strings.Contains(dom, token) || strings.Contains(dom, "pair-qr") {
			t.Errorf("%s through the rebound name leaked the pairing token: %.200q", path, dom)
		}
		if !strings.Contains(dom, "misdirected request") {
			t.Errorf("%s through the rebound name: no refusal in %.200q", path, dom)
		}
	}

	for _, origin := range []string{base, "http://localhost:" + u.Port() + "/"} {
		dom := chromium(t, rules, "--dump-dom", origin)
		doc, err := html.Parse(bytes.NewReader(dom))
		if err != nil {
			t.Fatal(err)
		}
		ids := byID(doc)
		if n, ok := ids["pair-uri"]; !ok || text(n) != statustest.Waiting().Pairing.URI {
			t.Errorf("%s: the page without its pairing URI: %.200q", origin, dom)
		}
	}
}
