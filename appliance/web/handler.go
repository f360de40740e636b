package web

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/redpanda-p2p/homenode/status"
)

// Options configures NewHandler. Source is required.
type Options struct {
	Source status.Source
	// Gatherer serves /metrics; nil answers 404 there.
	Gatherer prometheus.Gatherer
	// Health decides /healthz; nil means "the report can be made".
	Health func(ctx context.Context) error
	// Refresh is how often the page reloads itself; default 15 s.
	Refresh time.Duration
	// Logger receives failures; default slog.Default().
	Logger *slog.Logger
	// Hosts are the names, besides IP literals, that requests may carry
	// in their Host header; every other Host is refused (DNS rebinding,
	// host.go). Default: HostNames().
	Hosts []string
}

// QRSize is the side in pixels of the pairing QR code; 320 px scans well
// off a phone screen and a laptop screen alike.
const QRSize = 320

//go:embed page.html.tmpl
var pageSource string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"thousands": func(n any) string {
		switch v := n.(type) {
		case int:
			return status.Thousands(int64(v))
		case int64:
			return status.Thousands(v)
		}
		return fmt.Sprint(n)
	},
	"bytes": func(n any) string {
		switch v := n.(type) {
		case int64:
			return status.Bytes(uint64(max(v, 0)))
		case uint64:
			return status.Bytes(v)
		}
		return fmt.Sprint(n)
	},
	"duration": status.Duration,
	"short":    status.ShortID,
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return status.Duration(now.Sub(t)) + " ago"
	},
	"percent": func(part, whole uint64) string {
		if whole == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
	},
	"deref": func(p *float64) float64 { return *p },
	"hops":  status.Hops,
	"count": func(u status.Users, h status.Hop) int { return u.Count(h) },
}).Parse(pageSource))

type pageData struct {
	R       status.Report
	Refresh int
	QR      template.URL // data: URI of the pairing QR PNG, when waiting
}

// NewHandler returns the handler for every path the package serves.
func NewHandler(o Options) http.Handler {
	if o.Refresh <= 0 {
		o.Refresh = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hosts == nil {
		o.Hosts = HostNames()
	}
	names := make([]string, 0, len(o.Hosts))
	for _, n := range o.Hosts {
		names = append(names, normHost(n))
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.page)
	mux.HandleFunc("GET /status.json", h.json)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /pair.png", h.pairPNG)
	if o.Gatherer != nil {
		// One failing collector must not hide the Go/process figures.
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		}))
	}
	return securityHeaders(checkHost(names, mux))
}

type handler struct{ o Options }

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) report(w http.ResponseWriter, r *http.Request) (status.Report, bool) {
	rep, err := h.o.Source.Report(r.Context())
	if err != nil {
		h.o.Logger.Warn("web: status report failed", "path", r.URL.Path, "err", err)
		http.Error(w, "status unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return rep, false
	}
	return rep, true
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	rep, ok := h.report(w, r)
	if !ok {
		return
	}
	d := pageData{R: rep, Refresh: int(h.o.Refresh / time.Second)}
	if rep.Pairing.State == status.PairingWaiting && rep.Pairing.URI != "" {
		png, err := qrcode.Encode(rep.Pairing.URI, qrcode.Medium, QRSize)
		if err != nil {
			h.o.Logger.Warn("web: pairing QR", "err", err)
		} else {
			d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		}
	}
	// Render fully before writing so a template error is a clean 500.
	var buf bytes.Buffer
	if err := page.Execute(&buf, d); err != nil {
		h.o.Logger.Error("web: render page", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (h *handler) json(w http.ResponseWriter, r *http.Request) {
	rep, ok := h.report(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep)
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	var err error
	if h.o.Health != nil {
		err = h.o.Health(r.Context())
	} else {
		_, err = h.o.Source.Report(r.Context())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// pairPNG serves the QR code alone, for the console and for tests that
// decode it. Once the node is owned there is nothing to pair: 404.
func (h *handler) pairPNG(w http.ResponseWriter, r *http.Request) {
	rep, ok := h.report(w, r)
	if !ok {
		return
	}
	if rep.Pairing.State != status.PairingWaiting || rep.Pairing.URI == "" {
		http.Error(w, "not waiting for pairing", http.StatusNotFound)
		return
	}
	png, err := qrcode.Encode(rep.Pairing.URI, qrcode.Medium, QRSize)
	if err != nil {
		h.o.Logger.Warn("web: pairing QR", "err", err)
		http.Error(w, "QR encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}
