package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

const (
	magic = "RPBUNDLE"
	// FormatVersion is the container version byte after the magic.
	FormatVersion = 1
	// maxManifest and maxSignatures bound what is read before anything
	// is verified.
	maxManifest   = 64 << 10
	maxSignatures = 64 << 10
	// Compression of the payload.
	CompressionZstd = "zstd"
	CompressionNone = "none"
	// MaxImage bounds the slot image a manifest may announce (a slot
	// partition is smaller).
	MaxImage = 16 << 30
)

// Sentinel errors; the installer and the owner's client branch on them.
var (
	ErrMalformed = errors.New("bundle: not a valid bundle")
	// ErrUntrustedKey: signed, but by no key this box trusts (another
	// key, or a revoked one).
	ErrUntrustedKey = errors.New("bundle: not signed by a trusted release key")
	// ErrBadSignature: a trusted key's signature that does not match:
	// the manifest was changed after signing.
	ErrBadSignature = errors.New("bundle: signature does not match (tampered manifest)")
	// ErrPayloadHash: the payload or the image it holds is not what the
	// signed manifest says (tampered or damaged).
	ErrPayloadHash  = errors.New("bundle: payload does not match the signed manifest")
	ErrIncompatible = errors.New("bundle: for another board")
	ErrOlder        = errors.New("bundle: older than the running version")
	ErrSameVersion  = errors.New("bundle: the running version")
)

// Manifest describes what a bundle holds. It is signed as encoded.
type Manifest struct {
	Format     int       `json:"format"`     // 1
	Compatible string    `json:"compatible"` // board, e.g. "rpi-arm64"
	Version    string    `json:"version"`    // Debian version of the release
	Built      time.Time `json:"built"`
	Image      Blob      `json:"image"`   // the root slot image, as written
	Payload    Payload   `json:"payload"` // what follows the header
	// Notes is shown to the owner (what changed), at most 4 KiB.
	Notes string `json:"notes,omitempty"`
}

// Blob is a size and a SHA-256.
type Blob struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Payload is the image as stored in the bundle.
type Payload struct {
	Blob
	Compression string `json:"compression"`
}

func (m *Manifest) check() error {
	switch {
	case m.Format != 1:
		return fmt.Errorf("%w: manifest format %d, this build reads 1", ErrMalformed, m.Format)
	case m.Compatible == "":
		return fmt.Errorf("%w: no compatible board", ErrMalformed)
	case len(m.Notes) > 4096:
		return fmt.Errorf("%w: notes of %d bytes", ErrMalformed, len(m.Notes))
	case m.Image.Size <= 0 || m.Image.Size > MaxImage:
		return fmt.Errorf("%w: image size %d", ErrMalformed, m.Image.Size)
	case m.Payload.Size <= 0:
		return fmt.Errorf("%w: payload size %d", ErrMalformed, m.Payload.Size)
	case m.Payload.Compression != CompressionZstd && m.Payload.Compression != CompressionNone:
		return fmt.Errorf("%w: compression %q", ErrMalformed, m.Payload.Compression)
	}
	if err := CheckVersion(m.Version); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, h := range []string{m.Image.SHA256, m.Payload.SHA256} {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%w: bad SHA-256 %q", ErrMalformed, h)
		}
	}
	return nil
}

// Signature is one release key's signature over the manifest.
type Signature struct {
	Key KeyID  `json:"key"`
	Sig []byte `json:"sig"`
}

type sigBlock struct {
	Signatures   []Signature   `json:"signatures"`
	Endorsements []Endorsement `json:"endorsements,omitempty"`
}

// Options for Create.
type Options struct {
	Compatible string
	Version    string
	Notes      string
	Built      time.Time // default now
	// Signers sign the manifest; at least one. During a key rotation a
	// release may be signed by both keys.
	Signers []ed25519.PrivateKey
	// Endorsements introduce keys that older boxes do not know yet.
	Endorsements []Endorsement
	// Compression: CompressionZstd (default) or CompressionNone.
	Compression string
	// Level is the zstd encoder level; default best compression.
	Level zstd.EncoderLevel
}

// Create writes a bundle of the slot image read from image to out. tmp is
// a scratch file for the compressed payload (the manifest, which comes
// first, needs its hash).
func Create(out io.Writer, image io.Reader, tmp *os.File, o Options) (Manifest, error) {
	if len(o.Signers) == 0 {
		return Manifest{}, errors.New("bundle.Create: no signing key")
	}
	if o.Compression == "" {
		o.Compression = CompressionZstd
	}
	if o.Level == 0 {
		o.Level = zstd.SpeedBestCompression
	}
	if o.Built.IsZero() {
		o.Built = time.Now().UTC()
	}
	m := Manifest{Format: 1, Compatible: o.Compatible, Version: o.Version, Built: o.Built.UTC().Truncate(time.Second),
		Notes: o.Notes, Payload: Payload{Compression: o.Compression}}

	imgHash, payHash := sha256.New(), sha256.New()
	imgCount, payCount := &counter{}, &counter{}
	payOut := io.MultiWriter(tmp, payHash, payCount)
	src := io.TeeReader(image, io.MultiWriter(imgHash, imgCount))
	switch o.Compression {
	case CompressionZstd:
		zw, err := zstd.NewWriter(payOut, zstd.WithEncoderLevel(o.Level), zstd.WithEncoderCRC(true))
		if err != nil {
			return m, fmt.Errorf("bundle.Create: %w", err)
		}
		if _, err := io.Copy(zw, src); err != nil {
			zw.Close()
			return m, fmt.Errorf("bundle.Create: compress: %w", err)
		}
		if err := zw.Close(); err != nil {
			return m, fmt.Errorf("bundle.Create: compress: %w", err)
		}
	case CompressionNone:
		if _, err := io.Copy(payOut, src); err != nil {
			return m, fmt.Errorf("bundle.Create: %w", err)
		}
	default:
		return m, fmt.Errorf("bundle.Create: compression %q", o.Compression)
	}
	m.Image = Blob{Size: imgCount.n, SHA256: hex.EncodeToString(imgHash.Sum(nil))}
	m.Payload.Blob = Blob{Size: payCount.n, SHA256: hex.EncodeToString(payHash.Sum(nil))}
	if err := m.check(); err != nil {
		return m, fmt.Errorf("bundle.Create: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return m, err
	}
	if err := write(out, m, tmp, o.Signers, o.Endorsements); err != nil {
		return m, fmt.Errorf("bundle.Create: %w", err)
	}
	return m, nil
}

// write signs m and writes the header and the payload.
func write(out io.Writer, m Manifest, payload io.Reader, signers []ed25519.PrivateKey, es []Endorsement) error {
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	sb := sigBlock{Endorsements: es}
	for _, k := range signers {
		sb.Signatures = append(sb.Signatures, Signature{
			Key: IDOf(k.Public().(ed25519.PublicKey)),
			Sig: ed25519.Sign(k, append([]byte(manifestDomain), mb...)),
		})
	}
	sbb, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	var head bytes.Buffer
	head.WriteString(magic)
	head.WriteByte(FormatVersion)
	head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(mb))))
	head.Write(mb)
	head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(sbb))))
	head.Write(sbb)
	if _, err := out.Write(head.Bytes()); err != nil {
		return err
	}
	_, err = io.Copy(out, payload)
	return err
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// Bundle is an opened bundle whose manifest signature has been checked.
type Bundle struct {
	Manifest Manifest
	// SignedBy are the trusted keys whose signatures verified.
	SignedBy []KeyID
	r        io.ReaderAt
	offset   int64 // where the payload starts
}

// Open reads the header of the bundle in r (size bytes) and verifies the
// manifest's signatures against kr and the bundle's endorsements. It reads
// only the header: a refusal costs a few kilobytes. The payload is checked
// by VerifyPayload and Image.
func Open(r io.ReaderAt, size int64, kr *Keyring) (*Bundle, error) {
	hdr := io.NewSectionReader(r, 0, size)
	var pre [len(magic) + 1 + 4]byte
	if _, err := io.ReadFull(hdr, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: %d bytes, too short for a header", ErrMalformed, size)
	}
	if string(pre[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: no %s magic", ErrMalformed, magic)
	}
	if pre[len(magic)] != FormatVersion {
		return nil, fmt.Errorf("%w: container version %d, this build reads %d", ErrMalformed, pre[len(magic)], FormatVersion)
	}
	mb, err := readChunk(hdr, binary.BigEndian.Uint32(pre[len(magic)+1:]), maxManifest, "manifest")
	if err != nil {
		return nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(hdr, n[:]); err != nil {
		return nil, fmt.Errorf("%w: truncated before the signatures", ErrMalformed)
	}
	sbb, err := readChunk(hdr, binary.BigEndian.Uint32(n[:]), maxSignatures, "signature block")
	if err != nil {
		return nil, err
	}
	var sb sigBlock
	if err := json.Unmarshal(sbb, &sb); err != nil {
		return nil, fmt.Errorf("%w: signature block: %v", ErrMalformed, err)
	}
	trusted, err := kr.extend(sb.Endorsements)
	if err != nil {
		return nil, err
	}
	b := &Bundle{r: r}
	signed := append([]byte(manifestDomain), mb...)
	var bad []KeyID
	for _, s := range sb.Signatures {
		pub, ok := trusted[s.Key]
		if !ok || kr.revoked[s.Key] {
			continue
		}
		if ed25519.Verify(pub, signed, s.Sig) {
			b.SignedBy = append(b.SignedBy, s.Key)
		} else {
			bad = append(bad, s.Key)
		}
	}
	if len(b.SignedBy) == 0 {
		if len(bad) > 0 {
			return nil, fmt.Errorf("%w (key %s)", ErrBadSignature, bad[0])
		}
		var ids []KeyID
		for _, s := range sb.Signatures {
			ids = append(ids, s.Key)
		}
		return nil, fmt.Errorf("%w: signed by %v, this box trusts %v", ErrUntrustedKey, ids, kr.IDs())
	}
	if len(bad) > 0 {
		// One trusted key verified and another trusted key did not:
		// someone changed a signature; do not guess which is right.
		return nil, fmt.Errorf("%w (key %s)", ErrBadSignature, bad[0])
	}
	if err := json.Unmarshal(mb, &b.Manifest); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrMalformed, err)
	}
	if err := b.Manifest.check(); err != nil {
		return nil, err
	}
	b.offset = int64(len(pre)) + int64(len(mb)) + 4 + int64(len(sbb))
	if size-b.offset != b.Manifest.Payload.Size {
		return nil, fmt.Errorf("%w: %d payload bytes, the manifest says %d (truncated or padded)",
			ErrPayloadHash, size-b.offset, b.Manifest.Payload.Size)
	}
	slices.Sort(b.SignedBy)
	return b, nil
}

func readChunk(r io.Reader, n, max uint32, what string) ([]byte, error) {
	if n == 0 || n > max {
		return nil, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrMalformed, what, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
	return b, nil
}

// OpenFile opens the bundle at path; the caller closes the file.
func OpenFile(path string, kr *Keyring) (*Bundle, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	b, err := Open(f, st.Size(), kr)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return b, f, nil
}

// Policy is what a box accepts besides a valid signature.
type Policy struct {
	Compatible string // this board
	Running    string // the running version
	// AllowOlder lets the owner force a downgrade; AllowSame a reinstall
	// of the running version.
	AllowOlder, AllowSame bool
}

// Check applies p to the manifest.
func (b *Bundle) Check(p Policy) error {
	m := b.Manifest
	if m.Compatible != p.Compatible {
		return fmt.Errorf("%w: this bundle is for %q, this box is %q", ErrIncompatible, m.Compatible, p.Compatible)
	}
	switch c := CompareVersions(m.Version, p.Running); {
	case c < 0 && !p.AllowOlder:
		return fmt.Errorf("%w: bundle %s, running %s (the owner may force a downgrade)", ErrOlder, m.Version, p.Running)
	case c == 0 && !p.AllowSame && !p.AllowOlder:
		return fmt.Errorf("%w: %s is already running", ErrSameVersion, m.Version)
	}
	return nil
}

// VerifyPayload reads the whole payload and checks its size and SHA-256
// against the signed manifest; progress, when set, is called with the bytes
// read so far.
func (b *Bundle) VerifyPayload(progress func(int64)) error {
	h := sha256.New()
	var w io.Writer = h
	if progress != nil {
		w = io.MultiWriter(h, progressWriter(progress))
	}
	n, err := io.Copy(w, io.NewSectionReader(b.r, b.offset, b.Manifest.Payload.Size))
	if err != nil {
		return fmt.Errorf("bundle: read payload: %w", err)
	}
	if n != b.Manifest.Payload.Size || hex.EncodeToString(h.Sum(nil)) != b.Manifest.Payload.SHA256 {
		return fmt.Errorf("%w: payload SHA-256 differs", ErrPayloadHash)
	}
	return nil
}

func progressWriter(f func(int64)) io.Writer {
	var n int64
	return writerFunc(func(p []byte) (int, error) { n += int64(len(p)); f(n); return len(p), nil })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Image returns the slot image as a stream. It hashes the payload as it is
// read and the image as it is produced; at the end it returns
// ErrPayloadHash instead of io.EOF unless both match the signed manifest,
// so a writer that stops at the first error never accepts a changed image.
func (b *Bundle) Image() (io.ReadCloser, error) {
	payHash := sha256.New()
	src := io.TeeReader(io.NewSectionReader(b.r, b.offset, b.Manifest.Payload.Size), payHash)
	ir := &imageReader{m: b.Manifest, raw: src, payHash: payHash, imgHash: sha256.New()}
	switch b.Manifest.Payload.Compression {
	case CompressionZstd:
		// One decoder goroutine, and frames of at most 64 MiB windows:
		// the installer runs on a board with 1 GiB.
		d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		ir.src, ir.close = d, d.Close
	default:
		ir.src, ir.close = src, func() {}
	}
	return ir, nil
}

type imageReader struct {
	m                Manifest
	src              io.Reader
	raw              io.Reader // the payload as read, through payHash
	close            func()
	payHash, imgHash hash.Hash
	n                int64
	done             error
}

func (r *imageReader) Read(p []byte) (int, error) {
	if r.done != nil {
		return 0, r.done
	}
	if r.n+int64(len(p)) > r.m.Image.Size+1 {
		// Never more than the manifest's size (+1 to notice a longer one).
		p = p[:r.m.Image.Size+1-r.n]
	}
	n, err := r.src.Read(p)
	r.n += int64(n)
	r.imgHash.Write(p[:n])
	if r.n > r.m.Image.Size {
		r.done = fmt.Errorf("%w: the image is longer than %d bytes", ErrPayloadHash, r.m.Image.Size)
		return 0, r.done
	}
	if errors.Is(err, io.EOF) {
		// Whatever the decoder left unread is hashed too.
		if _, derr := io.Copy(io.Discard, r.raw); derr != nil {
			r.done = fmt.Errorf("bundle: read payload: %w", derr)
			return 0, r.done
		}
		switch {
		case r.n != r.m.Image.Size:
			r.done = fmt.Errorf("%w: the image is %d bytes, the manifest says %d", ErrPayloadHash, r.n, r.m.Image.Size)
		case hex.EncodeToString(r.imgHash.Sum(nil)) != r.m.Image.SHA256:
			r.done = fmt.Errorf("%w: image SHA-256 differs", ErrPayloadHash)
		case hex.EncodeToString(r.payHash.Sum(nil)) != r.m.Payload.SHA256:
			r.done = fmt.Errorf("%w: payload SHA-256 differs", ErrPayloadHash)
		default:
			r.done = io.EOF
		}
		if r.done != io.EOF {
			return 0, r.done
		}
		return n, r.done
	}
	if err != nil {
		r.done = fmt.Errorf("%w: %v", ErrPayloadHash, err)
		return 0, r.done
	}
	return n, nil
}

func (r *imageReader) Close() error { r.close(); return nil }
