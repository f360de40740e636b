package owner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/status"
)

// Firmware updates from the owner's phone (docs/UPDATES.md). Over the
// owner protocol the phone reads the update state ("update-status"), sets
// the release feed and how the node uses it ("update-config"), asks for a
// check now ("update-check"), and has a release installed ("update-apply":
// a version of the feed, a bundle URL, or a bundle it uploaded), and gives
// the node a write-only key of its master channel for reports
// ("report-key"). A bundle the phone carries travels on
// UploadProtocolID: the same owner proof, a header, then the bytes,
// resumable from where an interrupted upload stopped. The node checks
// every bundle itself: the phone is trusted to ask, not to vouch.

// UploadProtocolID carries a bundle from the owner's phone to its node.
const UploadProtocolID = "/redpanda/owner-update/1.0.0"

// MaxUpload bounds an uploaded bundle.
const MaxUpload int64 = 4 << 30

// Update sentinel errors.
var (
	// ErrNoUpdates: the node does not update itself this way (it is not
	// on the A/B SD-card image; apt updates it).
	ErrNoUpdates = errors.New("owner: this node has no firmware updates (not the A/B image)")
	// ErrBadReportKey: a report key that is not a write-only key.
	ErrBadReportKey = errors.New("owner: bad report key")
	// ErrUpdateRefused: the node checked the bundle and refused it (bad
	// signature, another board, an older version, ...).
	ErrUpdateRefused = errors.New("owner: update refused")
)

// UpdateSettings are the owner's choices for automatic updates.
type UpdateSettings struct {
	// Feed is the release feed URL; empty: no automatic checks.
	Feed string `json:"feed,omitempty"`
	// Interval between checks ("24h"); empty: the default.
	Interval string `json:"interval,omitempty"`
	// Manual: tell the owner of new releases, install none unasked.
	Manual bool `json:"manual,omitempty"`
	// Rate caps downloads in bytes per second; 0: default, -1: none.
	Rate int64 `json:"rate,omitempty"`
}

// UpdateApply says what to install: one of Version (of the feed), URL or
// Uploaded (a bundle this phone uploaded, by the name the node gave).
type UpdateApply struct {
	Version    string `json:"version,omitempty"`
	URL        string `json:"url,omitempty"`
	Uploaded   string `json:"uploaded,omitempty"`
	AllowOlder bool   `json:"allow_older,omitempty"`
}

// UpdateState is the answer to "update-status".
type UpdateState struct {
	Update   status.Update  `json:"update"`
	Settings UpdateSettings `json:"settings"`
}

// UploadHeader opens an upload.
type UploadHeader struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the whole bundle file
	// Apply installs the bundle once it is in; AllowOlder as in
	// UpdateApply.
	Apply      bool `json:"apply,omitempty"`
	AllowOlder bool `json:"allow_older,omitempty"`
}

// UploadSink receives an upload.
type UploadSink interface {
	// Offset is how much of the bundle the node already has.
	Offset() int64
	io.Writer
	// Done checks what arrived (size, hash, the bundle's signature and
	// policy) and, when asked, has it installed. It returns the name the
	// bundle is kept under.
	Done(ctx context.Context) (string, error)
	// Abort keeps what arrived for a later resume.
	Abort()
}

// Updates is the node's side of firmware updates, for its owner.
type Updates interface {
	State(ctx context.Context) (UpdateState, error)
	Configure(ctx context.Context, s UpdateSettings) error
	Check(ctx context.Context) error
	Apply(ctx context.Context, a UpdateApply) error
	Upload(ctx context.Context, h UploadHeader) (UploadSink, error)
	SetReportKey(key string) error
}

// updateRequest serves the update commands of the owner protocol.
func (s *Server) updateRequest(ctx context.Context, req Request) Response {
	if s.Updates == nil {
		return Response{Code: "no_updates", Error: ErrNoUpdates.Error()}
	}
	var err error
	var result any = struct{}{}
	switch req.Cmd {
	case "update-status":
		result, err = s.Updates.State(ctx)
	case "update-config":
		var us UpdateSettings
		if err = json.Unmarshal(req.Args, &us); err == nil {
			err = s.Updates.Configure(ctx, us)
		}
	case "update-check":
		err = s.Updates.Check(ctx)
	case "update-apply":
		var ua UpdateApply
		if err = json.Unmarshal(req.Args, &ua); err == nil {
			err = s.Updates.Apply(ctx, ua)
		}
	case "report-key":
		err = s.Updates.SetReportKey(req.Key)
	}
	if err != nil {
		code := "failed"
		switch {
		case errors.Is(err, ErrNoUpdates):
			code = "no_updates"
		case errors.Is(err, ErrUpdateRefused):
			code = "refused"
		case errors.Is(err, ErrBadReportKey):
			code = "bad_key"
		}
		return Response{Code: code, Error: err.Error()}
	}
	b, _ := json.Marshal(result)
	return Response{Result: b}
}

// handleUpload serves UploadProtocolID.
func (s *Server) handleUpload(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(stepTimeout))
	remote := st.Conn().RemotePeer()
	if !s.authenticate(st) {
		return
	}
	raw, err := readFrame(st, MaxFrame)
	if err != nil {
		return
	}
	var hdr UploadHeader
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Size <= 0 || hdr.Size > MaxUpload || len(hdr.SHA256) != 64 {
		s.reply(st, Response{Code: "malformed", Error: fmt.Sprintf("bad upload header (size 1 to %d bytes and a SHA-256)", MaxUpload)})
		return
	}
	if _, err := hex.DecodeString(hdr.SHA256); err != nil {
		s.reply(st, Response{Code: "malformed", Error: "bad SHA-256"})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink, err := s.Updates.Upload(ctx, hdr)
	if err != nil {
		s.reply(st, Response{Code: "failed", Error: err.Error()})
		return
	}
	off, _ := json.Marshal(struct {
		Offset int64 `json:"offset"`
	}{sink.Offset()})
	s.reply(st, Response{Result: off})
	// The bytes: as long as they keep coming (a minute of silence ends it).
	left := hdr.Size - sink.Offset()
	buf := make([]byte, 64<<10)
	for left > 0 {
		st.SetReadDeadline(time.Now().Add(time.Minute))
		n, rerr := st.Read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			if _, err := sink.Write(buf[:n]); err != nil {
				sink.Abort()
				s.reply(st, Response{Code: "failed", Error: err.Error()})
				return
			}
			left -= int64(n)
		}
		if rerr != nil && left > 0 {
			sink.Abort()
			s.log().Info("update upload interrupted; it resumes from here", "peer", remote.String(), "left", left, "err", rerr)
			return
		}
	}
	st.SetDeadline(time.Now().Add(10 * time.Minute)) // checking a large bundle on a Pi
	name, err := sink.Done(ctx)
	if err != nil {
		code := "failed"
		if errors.Is(err, ErrUpdateRefused) {
			code = "refused"
		}
		s.reply(st, Response{Code: code, Error: err.Error()})
		return
	}
	b, _ := json.Marshal(struct {
		Name string `json:"name"`
	}{name})
	s.reply(st, Response{Result: b})
}

// authenticate runs the owner proof on a stream (as handle does) and
// reports whether the peer proved to be the owner.
func (s *Server) authenticate(st network.Stream) bool {
	local, remote := st.Conn().LocalPeer(), st.Conn().RemotePeer()
	var challenge [challengeSize]byte
	rand.Read(challenge[:])
	if err := writeFrame(st, challenge[:]); err != nil {
		return false
	}
	auth, err := readFrame(st, MaxFrame)
	if err != nil || len(auth) != ed25519.PublicKeySize+ed25519.SignatureSize {
		s.reply(st, Response{Code: "malformed", Error: "authentication frame has the wrong size"})
		return false
	}
	key := ed25519.PublicKey(auth[:ed25519.PublicKeySize])
	if !ed25519.Verify(key, signedBytes(local, remote, challenge[:]), auth[ed25519.PublicKeySize:]) || !s.IsOwner(key) {
		s.log().Warn("owner protocol: refused a peer that is not the owner", "peer", remote.String())
		s.reply(st, Response{Code: "not_owner", Error: "this identity is not the node's owner"})
		return false
	}
	return true
}

// prove answers the node's challenge on a stream as the owner.
func prove(st network.Stream, h host.Host, node peer.ID, owner ed25519.PrivateKey) error {
	challenge, err := readFrame(st, MaxFrame)
	if err != nil {
		return err
	}
	if len(challenge) != challengeSize {
		return fmt.Errorf("%w: challenge of %d bytes", ErrMalformed, len(challenge))
	}
	sig := ed25519.Sign(owner, signedBytes(node, h.ID(), challenge))
	return writeFrame(st, append(append([]byte(nil), owner.Public().(ed25519.PublicKey)...), sig...))
}

func updateCall(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, cmd string, args any) (json.RawMessage, error) {
	req := Request{Cmd: cmd}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		req.Args = b
	}
	raw, err := call(ctx, h, node, owner, req)
	return raw, mapUpdateErr(err)
}

func mapUpdateErr(err error) error {
	var ne nodeError
	if errors.As(err, &ne) {
		switch ne.code {
		case "no_updates":
			return fmt.Errorf("%w: %s", ErrNoUpdates, ne.msg)
		case "refused":
			return fmt.Errorf("%w: %s", ErrUpdateRefused, ne.msg)
		case "bad_key":
			return fmt.Errorf("%w: %s", ErrBadReportKey, ne.msg)
		}
	}
	return err
}

// GetUpdateState asks the node, as its owner, for its update state.
func GetUpdateState(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey) (UpdateState, error) {
	var st UpdateState
	raw, err := updateCall(ctx, h, node, owner, "update-status", nil)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("%w: update state: %v", ErrMalformed, err)
	}
	return st, nil
}

// ConfigureUpdates sets the node's release feed and how it uses it.
func ConfigureUpdates(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, s UpdateSettings) error {
	_, err := updateCall(ctx, h, node, owner, "update-config", s)
	return err
}

// CheckForUpdate has the node check its feed now.
func CheckForUpdate(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey) error {
	_, err := updateCall(ctx, h, node, owner, "update-check", nil)
	return err
}

// ApplyUpdate has the node fetch and install a release; it returns once
// the node has started (watch GetUpdateState).
func ApplyUpdate(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, a UpdateApply) error {
	_, err := updateCall(ctx, h, node, owner, "update-apply", a)
	return err
}

// SetReportKey gives the node a write-only key (rpw…) of the owner's
// master channel, for its reports.
func SetReportKey(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, key string) error {
	_, err := call(ctx, h, node, owner, Request{Cmd: "report-key", Key: key})
	return mapUpdateErr(err)
}

func fileSHA256(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// UploadBundle sends the bundle file at path to the node, resuming an
// earlier upload of the same file, and returns the name the node keeps it
// under. With apply the node installs it once checked. progress, when
// set, is called with the bytes the node has.
func UploadBundle(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, path string, apply, allowOlder bool, progress func(done, total int64)) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	sum, err := fileSHA256(f)
	if err != nil {
		return "", err
	}
	st, err := openStream(ctx, h, node, UploadProtocolID)
	if err != nil {
		return "", err
	}
	defer st.Close()
	if _, ok := ctx.Deadline(); !ok {
		st.SetDeadline(time.Time{})
	}
	if err := prove(st, h, node, owner); err != nil {
		return "", err
	}
	hb, _ := json.Marshal(UploadHeader{Size: fi.Size(), SHA256: sum, Apply: apply, AllowOlder: allowOlder})
	if err := writeFrame(st, hb); err != nil {
		return "", err
	}
	raw, err := readFrame(st, MaxResponse)
	if err != nil {
		return "", err
	}
	res, err := decodeResponse(raw)
	if err != nil {
		return "", mapUpdateErr(err)
	}
	var off struct {
		Offset int64 `json:"offset"`
	}
	if err := json.Unmarshal(res, &off); err != nil || off.Offset < 0 || off.Offset > fi.Size() {
		return "", fmt.Errorf("%w: upload offset", ErrMalformed)
	}
	if _, err := f.Seek(off.Offset, io.SeekStart); err != nil {
		return "", err
	}
	done := off.Offset
	buf := make([]byte, 64<<10)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if _, err := st.Write(buf[:n]); err != nil {
				return "", fmt.Errorf("owner: upload: %w", err)
			}
			done += int64(n)
			if progress != nil {
				progress(done, fi.Size())
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", rerr
		}
	}
	if err := st.CloseWrite(); err != nil {
		return "", err
	}
	raw, err = readFrame(st, MaxResponse)
	if err != nil {
		return "", err
	}
	res, err = decodeResponse(raw)
	if err != nil {
		return "", mapUpdateErr(err)
	}
	var name struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(res, &name); err != nil {
		return "", fmt.Errorf("%w: upload result", ErrMalformed)
	}
	return name.Name, nil
}
