package owner

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/redpanda-p2p/homenode/internal/peerlimit"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Backups on the home node (paper §4.8; docs/BACKUP.md). The owner puts
// one encrypted blob with a lookup ID ("backup-put") and reads it back
// ("backup-get") over the owner protocol. A new phone that has lost the
// owner key fetches it on FetchProtocolID with the lookup ID alone: the
// ID is derived from the passphrase, so only someone who knows the
// passphrase can ask for the blob, and the node rate-limits the asking per
// source address.
// The node never sees the passphrase or the key, and does not parse the
// blob.

// FetchProtocolID serves the backup blob to whoever presents its lookup
// ID; no owner proof (the new phone has no owner key yet).
const FetchProtocolID = "/redpanda/backup/1.0.0"

// Limits.
const (
	// MaxBackup bounds the stored blob.
	MaxBackup = 1 << 20
	// LookupSize is the size of a lookup ID.
	LookupSize = 32
	// maxOwnerRequest bounds an authenticated request: a backup-put
	// carries the blob in base64 inside JSON.
	maxOwnerRequest = MaxBackup/3*4 + 4096
)

// Fetch rate limit: per source address (an IPv4 address, an IPv6 /56, or
// the relay a peer came through), not per peer, since an attacker has as
// many peer IDs as it likes, and not global, since a stranger asking once
// a second from elsewhere must not keep the owner's new phone from its
// backup. A passphrase guess costs the guesser an Argon2id run (the
// lookup ID is salted with the node's peer ID), which bounds guessing far
// below what many addresses would be allowed; each address gets
// fetchBurst answers at once, then one per fetchEvery.
const (
	fetchEvery = 10 * time.Second
	fetchBurst = 5
)

var (
	keyBlob   = []byte("blob")
	keyLookup = []byte("lookup")
)

// Backup sentinel errors.
var (
	// ErrNoBackup: the node holds no backup, or none under that lookup ID.
	ErrNoBackup = errors.New("owner: no backup")
	// ErrRateLimited: too many fetch attempts; try again later.
	ErrRateLimited = errors.New("owner: too many backup fetch attempts")
	// ErrTooLarge: a blob over MaxBackup.
	ErrTooLarge = errors.New("owner: backup too large")
)

type backupResult struct {
	Blob []byte `json:"blob"`
}

func (s *Server) backupPut(req Request) Response {
	switch {
	case s.Backups == nil:
		return Response{Code: "failed", Error: "this node keeps no backups"}
	case len(req.Blob) == 0:
		return Response{Code: "malformed", Error: "backup-put without a blob"}
	case len(req.Blob) > MaxBackup:
		return Response{Code: "too_large", Error: fmt.Sprintf("backup of %d bytes, limit %d", len(req.Blob), MaxBackup)}
	case len(req.Lookup) != LookupSize:
		return Response{Code: "malformed", Error: fmt.Sprintf("lookup ID of %d bytes, want %d", len(req.Lookup), LookupSize)}
	}
	// Lookup first: a crash between the two writes leaves the old blob
	// unreachable under the new ID rather than the new blob under the old.
	if err := s.Backups.Put(keyLookup, req.Lookup); err != nil {
		return Response{Code: "failed", Error: err.Error()}
	}
	if err := s.Backups.Put(keyBlob, req.Blob); err != nil {
		return Response{Code: "failed", Error: err.Error()}
	}
	s.log().Info("owner stored a backup", "bytes", len(req.Blob))
	return Response{}
}

func (s *Server) backupGet() Response {
	if s.Backups == nil {
		return Response{Code: "no_backup", Error: "this node keeps no backups"}
	}
	blob, err := s.Backups.Get(keyBlob)
	if errors.Is(err, store.ErrNotFound) {
		return Response{Code: "no_backup", Error: "no backup stored"}
	}
	if err != nil {
		return Response{Code: "failed", Error: err.Error()}
	}
	b, _ := json.Marshal(backupResult{Blob: blob})
	return Response{Result: b}
}

// handleFetch serves FetchProtocolID: one frame with a lookup ID, one
// response.
func (s *Server) handleFetch(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(stepTimeout))
	lookup, err := readFrame(st, LookupSize)
	if err != nil || len(lookup) != LookupSize {
		s.reply(st, Response{Code: "malformed", Error: fmt.Sprintf("want a %d-byte lookup ID", LookupSize)})
		return
	}
	addr := peerlimit.ConnKey(st.Conn())
	if !s.fetchLimit.Allow(addr) {
		s.log().Warn("backup fetch refused: rate limit", "peer", st.Conn().RemotePeer().String(), "addr", addr)
		s.reply(st, Response{Code: "rate_limited", Error: fmt.Sprintf("too many attempts; try again in %s", fetchEvery)})
		return
	}
	want, err := s.Backups.Get(keyLookup)
	if err != nil || subtle.ConstantTimeCompare(want, lookup) != 1 {
		s.log().Info("backup fetch with an unknown lookup ID", "peer", st.Conn().RemotePeer().String())
		s.reply(st, Response{Code: "no_backup", Error: "no backup under this passphrase here"})
		return
	}
	s.log().Info("backup fetched by lookup ID", "peer", st.Conn().RemotePeer().String())
	s.reply(st, s.backupGet())
}

// PutBackup stores blob on the node under lookup, as its owner.
func PutBackup(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey, lookup, blob []byte) error {
	if len(blob) > MaxBackup {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(blob), MaxBackup)
	}
	_, err := call(ctx, h, node, owner, Request{Cmd: "backup-put", Lookup: lookup, Blob: blob})
	return err
}

// GetBackup reads the stored blob back, as the node's owner.
func GetBackup(ctx context.Context, h host.Host, node peer.ID, owner ed25519.PrivateKey) ([]byte, error) {
	raw, err := call(ctx, h, node, owner, Request{Cmd: "backup-get"})
	if err != nil {
		return nil, err
	}
	return decodeBackup(raw)
}

// FetchBackup asks the node for the blob stored under lookup, with no
// owner proof: what a new phone does with only the node's address and
// the passphrase.
func FetchBackup(ctx context.Context, h host.Host, node peer.ID, lookup []byte) ([]byte, error) {
	st, err := openStream(ctx, h, node, FetchProtocolID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := writeFrame(st, lookup); err != nil {
		return nil, err
	}
	raw, err := readFrame(st, MaxResponse)
	if err != nil {
		return nil, err
	}
	res, err := decodeResponse(raw)
	if err != nil {
		return nil, err
	}
	return decodeBackup(res)
}

func decodeBackup(raw json.RawMessage) ([]byte, error) {
	var r backupResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: backup: %v", ErrMalformed, err)
	}
	if len(r.Blob) == 0 || len(r.Blob) > MaxBackup {
		return nil, fmt.Errorf("%w: backup of %d bytes", ErrMalformed, len(r.Blob))
	}
	return r.Blob, nil
}

func newFetchLimiter() *peerlimit.Limiter { return peerlimit.New(fetchEvery, fetchBurst, 0) }
