package store

import (
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// newChannel returns a random channel ID. The store never checks that it
// is a real Ed25519 key, so random bytes serve.
func newChannel() channel.ID {
	var ch channel.ID
	rand.Read(ch[:])
	return ch
}

// envelope builds an envelope with a random nonce, ciphertext and
// signature: the store stores and indexes, it does not verify.
func envelope(ch channel.ID, ts int64, n int) *channel.Envelope {
	e := &channel.Envelope{Version: channel.Version, Channel: ch, Timestamp: ts, Ciphertext: make([]byte, n)}
	rand.Read(e.Nonce[:])
	rand.Read(e.Ciphertext)
	rand.Read(e.Signature[:])
	return e
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func openAt(t testing.TB, path string, opt Options) *DB {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quietLog
	}
	db, err := Open(path, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openTemp(t testing.TB, opt Options) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "store.db"), opt)
}

// putAll stores envelopes from several goroutines, so the group commit
// shares fsyncs and bulk setup stays fast.
func putAll(t testing.TB, db *DB, es []*channel.Envelope) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(es))
	next := make(chan *channel.Envelope)
	for range 64 {
		wg.Go(func() {
			for e := range next {
				if _, err := db.Put(e); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, e := range es {
		next <- e
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Put: %v", err)
	}
}
