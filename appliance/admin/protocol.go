package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redpanda-p2p/homenode/status"
)

// MaxRequestSize bounds one request line, newline included. Requests are
// a command and at most one key string, so 4 KiB is generous.
const MaxRequestSize = 4096

// Commands, as sent in Request.Cmd.
const (
	CmdStatus   = "status"
	CmdPeers    = "peers"
	CmdUsers    = "users"
	CmdChannels = "channels"
	CmdRevoke   = "revoke"  // Arg: identity
	CmdBlock    = "block"   // Arg: channel ID
	CmdUnblock  = "unblock" // Arg: channel ID
	CmdReset    = "reset"   // factory reset: forget the owner and stored messages
	CmdBranch   = "branch"  // Arg: channel ID: who brought it in, through which chain
	CmdPrune    = "prune"   // Arg: channel ID: revoke the sponsors that brought it in
)

// needsArg lists each command and whether it takes an argument.
var needsArg = map[string]bool{
	CmdStatus: false, CmdPeers: false, CmdUsers: false, CmdChannels: false,
	CmdRevoke: true, CmdBlock: true, CmdUnblock: true, CmdReset: false,
	CmdBranch: true, CmdPrune: true, CmdHealth: false,
}

// Sentinel errors. The client maps the server's error codes back to these,
// so callers branch with errors.Is on either side of the socket.
var (
	ErrUnknownCommand   = errors.New("admin: unknown command")
	ErrMalformedRequest = errors.New("admin: malformed request")
	ErrRequestTooLarge  = errors.New("admin: request too large")
	// ErrNotFound is for Backend implementations: no such identity or channel.
	ErrNotFound = errors.New("admin: not found")
	// ErrSocketInUse: another process is listening on the socket path.
	ErrSocketInUse = errors.New("admin: socket in use by a running node")
	// ErrNotSocket: the socket path holds something else, left untouched.
	ErrNotSocket = errors.New("admin: path exists and is not a socket")
)

var codes = []struct {
	code string
	err  error
}{
	{"unknown_command", ErrUnknownCommand},
	{"malformed", ErrMalformedRequest},
	{"too_large", ErrRequestTooLarge},
	{"not_found", ErrNotFound},
}

func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "failed"
}

// Request is one line from client to server.
type Request struct {
	Cmd string `json:"cmd"`
	Arg string `json:"arg,omitempty"`
}

// Response is one line from server to client: Result on success, Error
// otherwise.
type Response struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *RemoteError    `json:"error,omitempty"`
}

// RemoteError is an error reported by the server. errors.Is matches it
// against the sentinel its code stands for.
type RemoteError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string { return e.Message }

// Is matches the sentinel for e.Code.
func (e *RemoteError) Is(target error) bool {
	for _, c := range codes {
		if c.code == e.Code && c.err == target {
			return true
		}
	}
	return false
}

// ParseRequest decodes and validates one request line (without the
// newline). Errors wrap ErrMalformedRequest or ErrUnknownCommand.
func ParseRequest(line []byte) (Request, error) {
	var req Request
	if len(line) > MaxRequestSize {
		return req, fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, len(line), MaxRequestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: %v", ErrMalformedRequest, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: more than one JSON value on the line", ErrMalformedRequest)
	}
	takesArg, known := needsArg[req.Cmd]
	switch {
	case !known:
		return req, fmt.Errorf("%w %q (known: status, peers, users, channels, revoke, block, unblock, reset, branch, prune, health)", ErrUnknownCommand, req.Cmd)
	case takesArg && req.Arg == "":
		return req, fmt.Errorf("%w: %s needs an argument", ErrMalformedRequest, req.Cmd)
	case !takesArg && req.Arg != "":
		return req, fmt.Errorf("%w: %s takes no argument", ErrMalformedRequest, req.Cmd)
	}
	return req, nil
}

// Backend carries out requests. The appliance implements it.
type Backend interface {
	Status(ctx context.Context) (status.Report, error)
	Peers(ctx context.Context) ([]status.Peer, error)
	Users(ctx context.Context) ([]status.User, error)
	Channels(ctx context.Context) ([]status.Channel, error)
	// Revoke removes identity and everyone it sponsored, returning the
	// identities removed. Unknown identities wrap ErrNotFound.
	Revoke(ctx context.Context, identity string) ([]string, error)
	// Block and Unblock stop and resume serving a channel. Unknown
	// channels wrap ErrNotFound.
	Block(ctx context.Context, channel string) error
	Unblock(ctx context.Context, channel string) error
	// Reset is the factory reset: forget the owner, registrations and
	// stored messages, keep the node identity, and wait for pairing with a
	// new token.
	Reset(ctx context.Context) error
}

// BranchBackend is the spam view (paper §4.5) of a backend that has it:
// which registered users asked for a channel and through which trust
// chains, and a one-step revoke of the sponsors that brought it in.
type BranchBackend interface {
	Branch(ctx context.Context, channel string) ([]status.User, error)
	Prune(ctx context.Context, channel string) ([]string, error)
}

// RevokeResult is the result of CmdRevoke.
type RevokeResult struct {
	Revoked []string `json:"revoked"`
}

// dispatch runs a parsed request against b and returns the JSON result.
func dispatch(ctx context.Context, b Backend, req Request) (any, error) {
	switch req.Cmd {
	case CmdStatus:
		return b.Status(ctx)
	case CmdPeers:
		return nonNil(b.Peers(ctx))
	case CmdUsers:
		return nonNil(b.Users(ctx))
	case CmdChannels:
		return nonNil(b.Channels(ctx))
	case CmdRevoke:
		ids, err := b.Revoke(ctx, req.Arg)
		if ids == nil {
			ids = []string{}
		}
		return RevokeResult{Revoked: ids}, err
	case CmdBlock:
		return struct{}{}, b.Block(ctx, req.Arg)
	case CmdUnblock:
		return struct{}{}, b.Unblock(ctx, req.Arg)
	case CmdReset:
		return struct{}{}, b.Reset(ctx)
	case CmdBranch, CmdPrune:
		bb, ok := b.(BranchBackend)
		if !ok {
			return nil, fmt.Errorf("%w %q: this node has no trust-chain view", ErrUnknownCommand, req.Cmd)
		}
		if req.Cmd == CmdBranch {
			return nonNil(bb.Branch(ctx, req.Arg))
		}
		ids, err := bb.Prune(ctx, req.Arg)
		if ids == nil {
			ids = []string{}
		}
		return RevokeResult{Revoked: ids}, err
	case CmdHealth:
		hb, ok := b.(HealthBackend)
		if !ok {
			return nil, fmt.Errorf("%w %q: this node cannot say", ErrUnknownCommand, req.Cmd)
		}
		return hb.Health(ctx)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCommand, req.Cmd)
}

// nonNil makes empty lists encode as [] rather than null for scripts.
func nonNil[T any](list []T, err error) ([]T, error) {
	if list == nil {
		list = []T{}
	}
	return list, err
}
