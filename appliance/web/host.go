package web

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// DNS rebinding: a web page a LAN browser loads from the attacker's name
// can have that name re-resolve to the box, and the browser then treats
// the box's answers as the attacker's own origin, readable by its
// scripts: /status.json carries the pairing URI while the node waits.
// The browser still sends the attacker's name in Host, so the handler
// answers only requests addressed to an IP literal or to one of the
// box's own names.

// HostNames returns the names the box answers to besides IP literals:
// localhost, the machine's host name, its first label and that label
// under .local (mDNS), and extra (configured names, e.g. a DNS name the
// home router gives the box). Names are compared case-insensitively and
// without a trailing dot.
func HostNames(extra ...string) []string {
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = normHost(h)
		label, _, _ := strings.Cut(h, ".")
		names = append(names, h, label, label+".local")
	}
	for _, e := range extra {
		if e = normHost(e); e != "" {
			names = append(names, e)
		}
	}
	return names
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".") }

// allowedHost reports whether a request's Host header names this box: an
// IPv4 literal, an IPv6 literal in brackets (each with or without a
// port), or one of names.
func allowedHost(host string, names []string) bool {
	if host == "" {
		return false
	}
	h := host
	if hh, port, err := net.SplitHostPort(host); err == nil {
		if port == "" {
			return false
		}
		h = hh
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		h = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return false // an IPv6 literal without brackets, or garbage
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		// A bracketed host must be IPv6 and a bare one IPv4.
		bracketed := strings.HasPrefix(host, "[")
		return ip.Is6() == bracketed
	}
	if strings.HasPrefix(host, "[") {
		return false
	}
	h = normHost(h)
	for _, n := range names {
		if h == n {
			return true
		}
	}
	return false
}

// checkHost refuses, with 421 Misdirected Request, every request whose
// Host is not allowedHost.
func checkHost(names []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, names) {
			http.Error(w, "421 misdirected request: this home node answers only to its IP address or its own names "+
				"(http_hosts in the configuration adds more)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
