package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestFeed(t *testing.T) {
	k, other := newKey(t), newKey(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f := Feed{Format: 1, Issued: now, Expires: now.Add(14 * 24 * time.Hour), Releases: []Release{
		{Version: "1.1-1", Compatible: "rpi-arm64", URL: "https://example.invalid/1.1.rpb", Size: 10, SHA256: string(bytes.Repeat([]byte("a"), 64))},
		{Version: "1.10-1", Compatible: "rpi-arm64", URL: "https://example.invalid/1.10.rpb", Size: 10, SHA256: string(bytes.Repeat([]byte("b"), 64))},
		{Version: "2.0-1", Compatible: "rpi-armhf", URL: "https://example.invalid/2.0.rpb", Size: 10, SHA256: string(bytes.Repeat([]byte("c"), 64))},
	}}
	b, err := SignFeed(f, []ed25519.PrivateKey{k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := NewKeyring(pub(k))
	got, err := OpenFeed(b, kr, now, true)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := got.Newest("rpi-arm64"); !ok || r.Version != "1.10-1" {
		t.Errorf("Newest = %+v %v, want 1.10-1", r, ok)
	}
	if _, ok := got.Newest("x86"); ok {
		t.Error("Newest found a release for another board")
	}
	if _, err := OpenFeed(b, kr, now.Add(15*24*time.Hour), true); !errors.Is(err, ErrFeedExpired) {
		t.Errorf("expired feed: %v", err)
	}
	if _, err := OpenFeed(b, kr, now.Add(15*24*time.Hour), false); err != nil {
		t.Errorf("expired feed, clock not synchronised: %v", err)
	}
	if _, err := OpenFeed(b, NewKeyring(pub(other)), now, true); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("other key: %v", err)
	}
	var sf signedFeed
	if err := json.Unmarshal(b, &sf); err != nil {
		t.Fatal(err)
	}
	sf.Feed = bytes.Replace(sf.Feed, []byte("1.10-1"), []byte("9.10-1"), 1)
	bad, _ := json.Marshal(sf)
	if _, err := OpenFeed(bad, kr, now, true); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered feed: %v", err)
	}
	if _, err := OpenFeed([]byte("{"), kr, now, true); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
}
