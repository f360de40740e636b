package sdnotify_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/sdnotify"
)

func TestJournalHandler(t *testing.T) {
	at := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"warn prefix", func(l *slog.Logger) { l.Warn("disk almost full", "free_bytes", 1024) },
			"<4>disk almost full free_bytes=1024\n"},
		{"info quoting", func(l *slog.Logger) { l.Info("peer dropped", "peer", "12D3", "reason", "timed out", "empty", "") },
			`<6>peer dropped peer=12D3 reason="timed out" empty=""` + "\n"},
		{"error value", func(l *slog.Logger) { l.Error("store", "err", errors.New("disk I/O error")) },
			`<3>store err="disk I/O error"` + "\n"},
		{"debug filtered", func(l *slog.Logger) { l.Debug("noise") }, ""},
		{"groups and attrs", func(l *slog.Logger) {
			l.With("node", "a").WithGroup("upnp").Info("mapped", "port", 4001, slog.Group("lease", "ttl", time.Hour))
		}, "<6>mapped node=a upnp.port=4001 upnp.lease.ttl=1h0m0s\n"},
		{"newline in message", func(l *slog.Logger) { l.Info("two\nlines") }, `<6>two\nlines` + "\n"},
		{"time value", func(l *slog.Logger) { l.Warn("clock", "at", at) }, "<4>clock at=2026-11-24T18:00:00Z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.log(slog.New(sdnotify.NewJournalHandler(&b, nil)))
			if got := b.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestUnderJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	match := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	tests := []struct {
		env  string
		want bool
	}{
		{match, true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		t.Setenv("JOURNAL_STREAM", tt.env)
		if got := sdnotify.UnderJournal(f); got != tt.want {
			t.Errorf("JOURNAL_STREAM=%q: UnderJournal = %v, want %v", tt.env, got, tt.want)
		}
	}

	// The chosen handler shows in the output: no time= under the journal.
	for _, tt := range []struct {
		env     string
		journal bool
	}{{match, true}, {"", false}} {
		t.Setenv("JOURNAL_STREAM", tt.env)
		f.Truncate(0)
		f.Seek(0, 0)
		slog.New(sdnotify.NewLogHandler(f, nil)).Warn("hot", "celsius", 81)
		out, _ := os.ReadFile(f.Name())
		if got := bytes.HasPrefix(out, []byte("<4>hot celsius=81")); got != tt.journal {
			t.Errorf("JOURNAL_STREAM=%q: output %q", tt.env, out)
		}
		if !tt.journal && !bytes.Contains(out, []byte("time=")) {
			t.Errorf("text handler output lacks time: %q", out)
		}
	}
}
