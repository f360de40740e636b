package bundle

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// A release feed is what a box polls to learn of new releases: a list of
// bundles with their URLs, sizes and SHA-256 (of the whole file), signed
// by a release key like the bundles themselves and valid until Expires,
// so that a mirror or a man in the middle can neither add a release nor
// keep a box on an old feed for long (a box with an unsynchronised clock
// does not check the expiry). The bundle's own signature is checked again
// after the download: the feed only says where to look.

const (
	feedDomain = "redpanda/v2/update-feed\x00"
	// MaxFeed bounds a feed document.
	MaxFeed = 256 << 10
)

// ErrFeedExpired: a validly signed feed past its expiry (stale or replayed).
var ErrFeedExpired = errors.New("bundle: release feed expired")

// Feed lists releases.
type Feed struct {
	Format   int       `json:"format"` // 1
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	Releases []Release `json:"releases"`
}

// Release is one bundle in a feed.
type Release struct {
	Version    string `json:"version"`
	Compatible string `json:"compatible"`
	URL        string `json:"url"`
	Size       int64  `json:"size"`   // of the bundle file
	SHA256     string `json:"sha256"` // of the bundle file
	Notes      string `json:"notes,omitempty"`
}

type signedFeed struct {
	Feed         []byte        `json:"feed"` // the JSON of a Feed, as signed (base64)
	Signatures   []Signature   `json:"signatures"`
	Endorsements []Endorsement `json:"endorsements,omitempty"`
}

// SignFeed encodes and signs f.
func SignFeed(f Feed, signers []ed25519.PrivateKey, es []Endorsement) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("bundle.SignFeed: no signing key")
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	sf := signedFeed{Feed: body, Endorsements: es}
	for _, k := range signers {
		sf.Signatures = append(sf.Signatures, Signature{Key: IDOf(k.Public().(ed25519.PublicKey)),
			Sig: ed25519.Sign(k, append([]byte(feedDomain), body...))})
	}
	return json.MarshalIndent(sf, "", "  ")
}

// OpenFeed verifies a signed feed against kr and returns it. now is the
// box's clock; with clockTrusted false the expiry is not checked.
func OpenFeed(b []byte, kr *Keyring, now time.Time, clockTrusted bool) (Feed, error) {
	var f Feed
	if len(b) > MaxFeed {
		return f, fmt.Errorf("%w: feed of %d bytes", ErrMalformed, len(b))
	}
	var sf signedFeed
	if err := json.Unmarshal(b, &sf); err != nil {
		return f, fmt.Errorf("%w: feed: %v", ErrMalformed, err)
	}
	trusted, err := kr.extend(sf.Endorsements)
	if err != nil {
		return f, err
	}
	signed := append([]byte(feedDomain), sf.Feed...)
	ok := false
	for _, s := range sf.Signatures {
		pub, known := trusted[s.Key]
		if !known || kr.revoked[s.Key] {
			continue
		}
		if !ed25519.Verify(pub, signed, s.Sig) {
			return f, fmt.Errorf("%w: feed signature by %s", ErrBadSignature, s.Key)
		}
		ok = true
	}
	if !ok {
		return f, fmt.Errorf("%w: feed", ErrUntrustedKey)
	}
	if err := json.Unmarshal(sf.Feed, &f); err != nil {
		return f, fmt.Errorf("%w: feed: %v", ErrMalformed, err)
	}
	if f.Format != 1 {
		return f, fmt.Errorf("%w: feed format %d", ErrMalformed, f.Format)
	}
	if clockTrusted && now.After(f.Expires) {
		return f, fmt.Errorf("%w at %s", ErrFeedExpired, f.Expires.Format(time.RFC3339))
	}
	for _, r := range f.Releases {
		if CheckVersion(r.Version) != nil || r.URL == "" || r.Size <= 0 || len(r.SHA256) != 64 {
			return f, fmt.Errorf("%w: feed release %+v", ErrMalformed, r)
		}
	}
	return f, nil
}

// Newest returns the newest release for compatible, if any.
func (f Feed) Newest(compatible string) (Release, bool) {
	var best Release
	found := false
	for _, r := range f.Releases {
		if r.Compatible != compatible {
			continue
		}
		if !found || CompareVersions(r.Version, best.Version) > 0 {
			best, found = r, true
		}
	}
	return best, found
}

// FileSHA256 hashes what r holds from its start.
func FileSHA256(r io.ReadSeeker) (string, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
