package sdnotify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

// UnderJournal reports whether f is connected to the systemd journal: the
// JOURNAL_STREAM variable names the device and inode of the journal stream,
// and they must match f's (a child with redirected stderr inherits the
// variable but not the stream).
func UnderJournal(f *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	dev, ino, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return strconv.FormatUint(uint64(st.Dev), 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}

// NewLogHandler picks the log format for f: NewJournalHandler when f is the
// journal stream, slog's text handler otherwise.
func NewLogHandler(f *os.File, opts *slog.HandlerOptions) slog.Handler {
	if UnderJournal(f) {
		return NewJournalHandler(f, opts)
	}
	return slog.NewTextHandler(f, opts)
}

// NewJournalHandler writes one line per record for journald's stream
// protocol: a syslog priority prefix ("<4>" for warnings, which journald
// strips and stores as PRIORITY), the message, then key=value fields. No
// timestamp: the journal adds its own. Of opts only Level is used.
func NewJournalHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	h := &journalHandler{w: w, mu: new(sync.Mutex), level: slog.LevelInfo}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

type journalHandler struct {
	w      io.Writer
	mu     *sync.Mutex // shared by handlers derived with WithAttrs/WithGroup
	level  slog.Leveler
	prefix string // group path for attributes added later, "g1.g2."
	attrs  string // pre-formatted " k=v" of WithAttrs
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// priority maps slog levels to syslog priorities (sd-daemon.h).
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>", priority(r.Level))
	// The message is free text on a line of its own; only line breaks
	// would split the event, so they are escaped.
	b.WriteString(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(r.Message))
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	h2 := *h
	h2.attrs += b.String()
	return &h2
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix += name + "."
	return &h2
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(quote(prefix + a.Key))
	b.WriteByte('=')
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			s = err.Error()
		} else {
			s = a.Value.String()
		}
	default:
		s = a.Value.String()
	}
	b.WriteString(quote(s))
}

// quote quotes s when it would not read back as one token.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '=' || r == '"' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
