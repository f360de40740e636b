package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testImage is a slot-image-like stream: runs of zeros and of random
// bytes, so compression has something to do both ways.
func testImage(size int) []byte {
	r := mrand(7)
	b := make([]byte, size)
	for i := 0; i < size; i += 8192 {
		if (i/8192)%3 == 0 {
			end := min(i+8192, size)
			for j := i; j < end; j++ {
				b[j] = byte(r.Uint32())
			}
		}
	}
	return b
}

func mrand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// makeBundle creates a bundle file of img and returns its path.
func makeBundle(t *testing.T, img []byte, o Options) string {
	t.Helper()
	dir := t.TempDir()
	tmp, err := os.CreateTemp(dir, "payload")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	if o.Compatible == "" {
		o.Compatible = "rpi-arm64"
	}
	if o.Version == "" {
		o.Version = "1.1.0-1"
	}
	var out bytes.Buffer
	if _, err := Create(&out, bytes.NewReader(img), tmp, o); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "update.rpb")
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openPath(t *testing.T, p string, kr *Keyring) (*Bundle, error) {
	t.Helper()
	b, f, err := OpenFile(p, kr)
	if f != nil {
		t.Cleanup(func() { f.Close() })
	}
	return b, err
}

func readImage(b *Bundle) ([]byte, error) {
	r, err := b.Image()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestRoundTrip(t *testing.T) {
	k := newKey(t)
	img := testImage(3<<20 + 123)
	for _, comp := range []string{CompressionZstd, CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			p := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{k}, Compression: comp, Notes: "fixes"})
			b, err := openPath(t, p, NewKeyring(pub(k)))
			if err != nil {
				t.Fatal(err)
			}
			m := b.Manifest
			if m.Version != "1.1.0-1" || m.Compatible != "rpi-arm64" || m.Image.Size != int64(len(img)) || m.Notes != "fixes" {
				t.Errorf("manifest %+v", m)
			}
			if len(b.SignedBy) != 1 || b.SignedBy[0] != IDOf(pub(k)) {
				t.Errorf("SignedBy %v", b.SignedBy)
			}
			var seen int64
			if err := b.VerifyPayload(func(n int64) { seen = n }); err != nil {
				t.Fatal(err)
			}
			if seen != m.Payload.Size {
				t.Errorf("progress reached %d of %d", seen, m.Payload.Size)
			}
			got, err := readImage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Fatal("the image read back differs")
			}
			if comp == CompressionZstd && m.Payload.Size >= m.Image.Size {
				t.Errorf("zstd payload %d bytes for a %d-byte image", m.Payload.Size, m.Image.Size)
			}
		})
	}
}

// TestTamperedPayload flips one payload byte at several places: refused
// by VerifyPayload, and by the image stream at its end.
func TestTamperedPayload(t *testing.T) {
	k := newKey(t)
	img := testImage(1 << 20)
	p := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{k}})
	raw, _ := os.ReadFile(p)
	b0, err := openPath(t, p, NewKeyring(pub(k)))
	if err != nil {
		t.Fatal(err)
	}
	start := len(raw) - int(b0.Manifest.Payload.Size)
	for _, at := range []int{start, start + 1000, len(raw) / 2, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[at] ^= 0x40
		bp := filepath.Join(t.TempDir(), "bad.rpb")
		os.WriteFile(bp, bad, 0o644)
		b, err := openPath(t, bp, NewKeyring(pub(k)))
		if err != nil {
			t.Fatalf("byte %d: Open = %v (the header is intact)", at, err)
		}
		if err := b.VerifyPayload(nil); !errors.Is(err, ErrPayloadHash) {
			t.Errorf("byte %d: VerifyPayload = %v, want ErrPayloadHash", at, err)
		}
		if _, err := readImage(b); !errors.Is(err, ErrPayloadHash) {
			t.Errorf("byte %d: image stream = %v, want ErrPayloadHash", at, err)
		}
	}
}

// TestTamperedManifest: any change to the signed manifest is refused by
// Open, before the payload is read.
func TestTamperedManifest(t *testing.T) {
	k := newKey(t)
	p := makeBundle(t, testImage(64<<10), Options{Signers: []ed25519.PrivateKey{k}, Version: "1.1.0-1"})
	raw, _ := os.ReadFile(p)
	for _, change := range [][2]string{{`"1.1.0-1"`, `"9.1.0-1"`}, {`"rpi-arm64"`, `"rpi-arm65"`}, {`"size": `, `"size":  `}} {
		bad := bytes.Replace(raw, []byte(change[0]), []byte(change[1]), 1)
		if bytes.Equal(bad, raw) {
			t.Fatalf("%q not found in the bundle", change[0])
		}
		if len(bad) != len(raw) {
			// keep the lengths honest: fix the manifest length field
			bad = fixManifestLength(bad, len(bad)-len(raw))
		}
		bp := filepath.Join(t.TempDir(), "bad.rpb")
		os.WriteFile(bp, bad, 0o644)
		if _, err := openPath(t, bp, NewKeyring(pub(k))); !errors.Is(err, ErrBadSignature) {
			t.Errorf("manifest %q -> %q: Open = %v, want ErrBadSignature", change[0], change[1], err)
		}
	}
}

func fixManifestLength(b []byte, delta int) []byte {
	n := int(b[9])<<24 | int(b[10])<<16 | int(b[11])<<8 | int(b[12])
	n += delta
	b[9], b[10], b[11], b[12] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

func TestOtherKeyAndRevoked(t *testing.T) {
	k, other := newKey(t), newKey(t)
	p := makeBundle(t, testImage(64<<10), Options{Signers: []ed25519.PrivateKey{other}})
	if _, err := openPath(t, p, NewKeyring(pub(k))); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("another key: Open = %v, want ErrUntrustedKey", err)
	}
	kr := NewKeyring(pub(k), pub(other))
	kr.Revoke(IDOf(pub(other)))
	if _, err := openPath(t, p, kr); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("revoked key: Open = %v, want ErrUntrustedKey", err)
	}
}

// TestKeyRotation: a box that trusts only the old key accepts a bundle
// signed by the new key when the bundle carries the new key endorsed by
// the old one (also in a chain), and refuses a forged or revoked one.
func TestKeyRotation(t *testing.T) {
	k1, k2, k3, mallory := newKey(t), newKey(t), newKey(t), newKey(t)
	img := testImage(64 << 10)
	box := func() *Keyring { return NewKeyring(pub(k1)) }

	p := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{k2}, Endorsements: []Endorsement{Endorse(k1, pub(k2))}})
	if b, err := openPath(t, p, box()); err != nil || b.SignedBy[0] != IDOf(pub(k2)) {
		t.Fatalf("endorsed new key: %v", err)
	}
	chain := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{k3},
		Endorsements: []Endorsement{Endorse(k2, pub(k3)), Endorse(k1, pub(k2))}})
	if _, err := openPath(t, chain, box()); err != nil {
		t.Fatalf("endorsed chain k1 -> k2 -> k3: %v", err)
	}
	// Mallory endorses herself: not by a trusted key.
	self := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{mallory}, Endorsements: []Endorsement{Endorse(mallory, pub(mallory))}})
	if _, err := openPath(t, self, box()); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("self-endorsed key: %v, want ErrUntrustedKey", err)
	}
	// An endorsement claiming to be by k1 but signed by Mallory.
	forged := Endorse(mallory, pub(mallory))
	forged.By = IDOf(pub(k1))
	fp := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{mallory}, Endorsements: []Endorsement{forged}})
	if _, err := openPath(t, fp, box()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged endorsement: %v, want ErrBadSignature", err)
	}
	// k2 revoked on the box: its endorsement no longer counts.
	kr := box()
	kr.Revoke(IDOf(pub(k2)))
	if _, err := openPath(t, p, kr); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("revoked endorsed key: %v, want ErrUntrustedKey", err)
	}
}

func TestTruncatedAndGarbage(t *testing.T) {
	k := newKey(t)
	p := makeBundle(t, testImage(256<<10), Options{Signers: []ed25519.PrivateKey{k}})
	raw, _ := os.ReadFile(p)
	kr := NewKeyring(pub(k))
	for name, tt := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":           {nil, ErrMalformed},
		"magic only":      {raw[:8], ErrMalformed},
		"header cut":      {raw[:40], ErrMalformed},
		"payload cut":     {raw[:len(raw)-100], ErrPayloadHash},
		"payload padded":  {append(bytes.Clone(raw), 0), ErrPayloadHash},
		"not a bundle":    {[]byte(strings.Repeat("GIF89a", 100)), ErrMalformed},
		"other container": {append([]byte("RPBUNDLE\x02"), raw[9:]...), ErrMalformed},
		"huge manifest":   {append([]byte("RPBUNDLE\x01\xff\xff\xff\xff"), raw[13:]...), ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			bp := filepath.Join(t.TempDir(), "x.rpb")
			os.WriteFile(bp, tt.b, 0o644)
			if _, err := openPath(t, bp, kr); !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestImageHashChecked: a manifest (validly signed) whose image hash does
// not match what the payload decompresses to is refused at the stream's
// end, although the payload hash matches.
func TestImageHashChecked(t *testing.T) {
	k := newKey(t)
	img := testImage(128 << 10)
	p := makeBundle(t, img, Options{Signers: []ed25519.PrivateKey{k}})
	b, err := openPath(t, p, NewKeyring(pub(k)))
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(m *Manifest){
		"hash":  func(m *Manifest) { m.Image.SHA256 = strings.Repeat("ab", 32) },
		"short": func(m *Manifest) { m.Image.Size-- },
		"long":  func(m *Manifest) { m.Image.Size++ },
	} {
		t.Run(name, func(t *testing.T) {
			m := b.Manifest
			change(&m)
			raw, _ := os.ReadFile(p)
			var out bytes.Buffer
			if err := write(&out, m, bytes.NewReader(raw[len(raw)-int(m.Payload.Size):]), []ed25519.PrivateKey{k}, nil); err != nil {
				t.Fatal(err)
			}
			bp := filepath.Join(t.TempDir(), "x.rpb")
			os.WriteFile(bp, out.Bytes(), 0o644)
			b2, err := openPath(t, bp, NewKeyring(pub(k)))
			if err != nil {
				t.Fatal(err)
			}
			if err := b2.VerifyPayload(nil); err != nil {
				t.Fatalf("payload hash: %v", err)
			}
			if _, err := readImage(b2); !errors.Is(err, ErrPayloadHash) {
				t.Errorf("image stream = %v, want ErrPayloadHash", err)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	b := &Bundle{Manifest: Manifest{Compatible: "rpi-arm64", Version: "1.2.0-1"}}
	for _, tt := range []struct {
		p    Policy
		want error
	}{
		{Policy{Compatible: "rpi-arm64", Running: "1.1.0-1"}, nil},
		{Policy{Compatible: "rpi-armhf", Running: "1.1.0-1"}, ErrIncompatible},
		{Policy{Compatible: "rpi-arm64", Running: "1.10.0-1"}, ErrOlder},
		{Policy{Compatible: "rpi-arm64", Running: "1.10.0-1", AllowOlder: true}, nil},
		{Policy{Compatible: "rpi-arm64", Running: "1.2.0-1"}, ErrSameVersion},
		{Policy{Compatible: "rpi-arm64", Running: "1.2.0-1", AllowSame: true}, nil},
		{Policy{Compatible: "rpi-arm64", Running: "0~git20261206.abc-1"}, nil},
	} {
		if err := b.Check(tt.p); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Check(%+v) = %v, want %v", tt.p, err, tt.want)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	priv, pubPEM, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicKey(pubPEM)
	if err != nil || !p.Equal(k.Public()) {
		t.Fatalf("public key %v %v", p, err)
	}
	if _, err := ParsePrivateKey(pubPEM); !errors.Is(err, ErrBadKey) {
		t.Errorf("a public key as private: %v", err)
	}
	if _, err := ParsePublicKey([]byte("nope")); !errors.Is(err, ErrBadKey) {
		t.Errorf("garbage: %v", err)
	}
	dir := t.TempDir()
	if _, err := LoadKeyring(dir); err == nil {
		t.Error("an empty keyring directory loaded")
	}
	os.WriteFile(filepath.Join(dir, "release-2026.pub"), pubPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	kr, err := LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ids := kr.IDs(); len(ids) != 1 || ids[0] != IDOf(p) || kr.Name(ids[0]) != "release-2026" {
		t.Errorf("keyring %v %q", ids, kr.Name(ids[0]))
	}
	os.WriteFile(filepath.Join(dir, "release-2026.revoked"), pubPEM, 0o644)
	if _, err := LoadKeyring(dir); err == nil {
		t.Error("a keyring whose only key is revoked loaded")
	}
	os.WriteFile(filepath.Join(dir, "broken.pub"), []byte("x"), 0o644)
	if _, err := LoadKeyring(dir); !errors.Is(err, ErrBadKey) {
		t.Errorf("broken key file: %v", err)
	}
}

// TestDevKey: the development key pair in the repository matches, and the
// public key is what update/keys holds for development images.
func TestDevKey(t *testing.T) {
	privPEM, err := os.ReadFile("../keys/dev-release.key")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := LoadKeyring("../keys")
	if err != nil {
		t.Fatal(err)
	}
	if ids := kr.IDs(); len(ids) != 1 || ids[0] != IDOf(pub(k)) {
		t.Fatalf("update/keys trusts %v, want only the dev key %s", ids, IDOf(pub(k)))
	}
}
