// Package owner is the owner-only protocol /redpanda/owner/1.0.0: the
// paired owner's client asks its home node for things only the owner may
// see or do (the status report; storing and reading its backup blob;
// firmware updates). It has both halves: the node's handler (Server) and
// the phone's calls (Status, PutBackup, Apply, ...).
//
// It sits at the top level beside provisioning, not under it: pairing
// (provisioning) makes a phone the owner, and this protocol is what the
// owner does afterwards, so both are protocols a phone speaks to its node,
// with both halves in one package each; but provisioning is the node's
// first-boot state machine, and nesting this under it would say that
// ownership is a state of pairing. It is not under appliance/ because the
// phone side (cmd/redpanda, mobile/redpanda) must not import the appliance.
//
// It knows the status report type (package status), the message store's
// meta bucket (for the backup blob) and libp2p streams; it must not know
// the appliance: the appliance supplies who the owner is and the answers
// (IsOwner, Status, Follow, Updates).
//
// A session: the node sends a 32-byte random challenge; the client
// answers with its owner identity public key and an Ed25519 signature,
// under the domain tag "redpanda/v2/owner-auth\x00", over the node's peer
// ID, the client's peer ID and the challenge, so a proof is bound to this
// connection and cannot be replayed or relayed; then one JSON request and
// one JSON response. Frames are a 4-byte big-endian length and a body,
// capped before allocation.
package owner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redpanda-p2p/homenode/internal/peerlimit"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/status"
)

// ProtocolID is the owner protocol.
const ProtocolID = "/redpanda/owner/1.0.0"

// MaxFrame bounds a request; responses may be larger (MaxResponse).
const (
	MaxFrame    = 4096
	MaxResponse = 4 << 20
)

const (
	challengeSize = 32
	authDomain    = "redpanda/v2/owner-auth\x00"
	stepTimeout   = 30 * time.Second
)

// Sentinel errors.
var (
	ErrNotOwner  = errors.New("owner: not the node's owner")
	ErrMalformed = errors.New("owner: malformed message")
	ErrUnknown   = errors.New("owner: unknown request")
)

// Request is what the owner asks.
type Request struct {
	Cmd    string `json:"cmd"`              // "status", "backup-put", "backup-get"
	Lookup []byte `json:"lookup,omitempty"` // backup-put: the fetch lookup ID
	Blob   []byte `json:"blob,omitempty"`   // backup-put: the encrypted backup
	Key    string `json:"key,omitempty"`    // follow: the read-only key of the owner's node channel; report-key: a write-only key
	// Args are a command's arguments as JSON (the update commands).
	Args json.RawMessage `json:"args,omitempty"`
}

// Response carries the result or an error text.
type Response struct {
	Error  string          `json:"error,omitempty"`
	Code   string          `json:"code,omitempty"` // "not_owner", "unknown", "failed", "no_backup", "rate_limited", "too_large"
	Result json.RawMessage `json:"result,omitempty"`
}

// Server answers the owner on a host.
type Server struct {
	// IsOwner says whether key is the node's owner.
	IsOwner func(key ed25519.PublicKey) bool
	// Status makes the report.
	Status func(ctx context.Context) (status.Report, error)
	// Follow makes the node follow the owner's node channel (whose
	// read-only key the owner's device sends) and serve the channels
	// listed there (docs/DEVICES.md); nil refuses "follow".
	Follow func(key string) error
	// Backups keeps the owner's backup blob and its lookup ID; nil
	// serves no backups.
	Backups *store.Meta
	// Updates serves the firmware update commands and bundle uploads
	// (update.go); nil: not on this node.
	Updates Updates
	Logger  *slog.Logger

	fetchLimit *peerlimit.Limiter
}

// Register serves the protocol on h until the handler is removed, and
// the backup fetch protocol when Backups is set.
func (s *Server) Register(h host.Host) {
	h.SetStreamHandler(ProtocolID, s.handle)
	if s.Backups != nil {
		s.fetchLimit = newFetchLimiter()
		h.SetStreamHandler(FetchProtocolID, s.handleFetch)
	}
	if s.Updates != nil {
		h.SetStreamHandler(UploadProtocolID, s.handleUpload)
	}
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(stepTimeout))
	local, remote := st.Conn().LocalPeer(), st.Conn().RemotePeer()
	var challenge [challengeSize]byte
	rand.Read(challenge[:])
	if err := writeFrame(st, challenge[:]); err != nil {
		return
	}
	auth, err := readFrame(st, MaxFrame)
	if err != nil {
		s.log().Info("owner protocol: bad frame", "peer", remote.String(), "err", err)
		return
	}
	if len(auth) != ed25519.PublicKeySize+ed25519.SignatureSize {
		s.reply(st, Response{Code: "malformed", Error: "authentication frame has the wrong size"})
		return
	}
	key := ed25519.PublicKey(auth[:ed25519.PublicKeySize])
	sig := auth[ed25519.PublicKeySize:]
	if !ed25519.Verify(key, signedBytes(local, remote, challenge[:]), sig) || !s.IsOwner(key) {
		s.log().Warn("owner protocol: refused a peer that is not the owner", "peer", remote.String())
		s.reply(st, Response{Code: "not_owner", Error: "this identity is not the node's owner"})
		return
	}
	raw, err := readFrame(st, maxOwnerRequest) // only the owner gets this far
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(raw, &req); err != nil {
		s.reply(st, Response{Code: "malformed", Error: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	switch req.Cmd {
	case "status":
		r, err := s.Status(ctx)
		if err != nil {
			s.reply(st, Response{Code: "failed", Error: err.Error()})
			return
		}
		b, _ := json.Marshal(r)
		s.reply(st, Response{Result: b})
	case "backup-put":
		s.reply(st, s.backupPut(req))
	case "backup-get":
		s.reply(st, s.backupGet())
	case "follow":
		if s.Follow == nil {
			s.reply(st, Response{Code: "unknown", Error: "this node does not follow node channels"})
			return
		}
		if err := s.Follow(req.Key); err != nil {
			s.reply(st, Response{Code: "failed", Error: err.Error()})
			return
		}
		s.reply(st, Response{Result: json.RawMessage(`{}`)})
	case "update-status", "update-config", "update-check", "update-apply", "report-key":
		s.reply(st, s.updateRequest(ctx, req))
	default:
		s.reply(st, Response{Code: "unknown", Error: fmt.Sprintf("unknown request %q", req.Cmd)})
	}
}

func (s *Server) reply(st network.Stream, r Response) {
	b, _ := json.Marshal(r)
	writeFrame(st, b)
}

func signedBytes(node, client peer.ID, challenge []byte) []byte {
	b := []byte(authDomain)
	b = append(b, []byte(node)...)
	b = append(b, []byte(client)...)
	return append(b, challenge...)
}

// Status asks the node for its status report as its owner.
func Status(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey) (status.Report, error) {
	var r status.Report
	raw, err := call(ctx, h, node, owner, Request{Cmd: "status"})
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("%w: status report: %v", ErrMalformed, err)
	}
	return r, nil
}

// Follow gives the node, as its owner, the read-only key of the owner's
// node channel, so it serves the channels the owner's devices list there.
func Follow(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, key string) error {
	_, err := call(ctx, h, node, owner, Request{Cmd: "follow", Key: key})
	return err
}

// openStream opens a stream of proto to node with ctx's deadline, or
// stepTimeout when ctx has none.
func openStream(ctx context.Context, h host.Host, node peer.ID, proto protocol.ID) (network.Stream, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "redpanda"), node, proto)
	if err != nil {
		return nil, fmt.Errorf("owner: open stream to %s: %w", node, err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	} else {
		st.SetDeadline(time.Now().Add(stepTimeout))
	}
	return st, nil
}

func call(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, req Request) (json.RawMessage, error) {
	st, err := openStream(ctx, h, node, ProtocolID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	challenge, err := readFrame(st, MaxFrame)
	if err != nil {
		return nil, err
	}
	if len(challenge) != challengeSize {
		return nil, fmt.Errorf("%w: challenge of %d bytes", ErrMalformed, len(challenge))
	}
	sig := ed25519.Sign(owner, signedBytes(node, h.ID(), challenge))
	auth := append(append([]byte(nil), owner.Public().(ed25519.PublicKey)...), sig...)
	if err := writeFrame(st, auth); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(req)
	if err := writeFrame(st, b); err != nil {
		return nil, err
	}
	raw, err := readFrame(st, MaxResponse)
	if err != nil {
		return nil, err
	}
	return decodeResponse(raw)
}

// decodeResponse maps a response to its result or a sentinel error.
func decodeResponse(raw []byte) (json.RawMessage, error) {
	var resp Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("%w: response: %v", ErrMalformed, err)
	}
	switch resp.Code {
	case "":
		return resp.Result, nil
	case "not_owner":
		return nil, fmt.Errorf("%w: %s", ErrNotOwner, resp.Error)
	case "unknown":
		return nil, fmt.Errorf("%w: %s", ErrUnknown, resp.Error)
	case "no_backup":
		return nil, fmt.Errorf("%w: %s", ErrNoBackup, resp.Error)
	case "rate_limited":
		return nil, fmt.Errorf("%w: %s", ErrRateLimited, resp.Error)
	case "too_large":
		return nil, fmt.Errorf("%w: %s", ErrTooLarge, resp.Error)
	default:
		return nil, nodeError{code: resp.Code, msg: resp.Error}
	}
}

func writeFrame(w io.Writer, b []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return fmt.Errorf("owner: write: %w", err)
	}
	return nil
}

// readFrame reads one frame, refusing a length over max before it
// allocates.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("owner: read: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > uint32(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrMalformed, size, max)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("owner: read: %w", err)
	}
	return b, nil
}

// nodeError is an error the node reported with a code this file does not
// map to a sentinel.
type nodeError struct{ code, msg string }

func (e nodeError) Error() string { return "owner: node says: " + e.msg }
