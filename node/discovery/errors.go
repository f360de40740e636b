package discovery

import "errors"

// Sentinel errors. Every error returned by this package that a caller may
// branch on wraps one of these.
var (
	// ErrMalformed: bytes that do not decode as a statement or an authz frame.
	ErrMalformed = errors.New("discovery: malformed")
	// ErrBadSignature: a statement not signed by the channel's write key.
	ErrBadSignature = errors.New("discovery: statement signature does not verify")
	// ErrExpired: a statement whose validity has ended.
	ErrExpired = errors.New("discovery: statement expired")
	// ErrWrongChannel: a statement for another channel than the one asked.
	ErrWrongChannel = errors.New("discovery: statement is for another channel")
	// ErrWrongPeer: a statement naming another node than the one showing it.
	ErrWrongPeer = errors.New("discovery: statement is for another node")
	// ErrCannotSign: a channel key without the write key (read-only).
	ErrCannotSign = errors.New("discovery: key cannot sign statements (no write key)")
	// ErrNotAuthorized: a peer that did not show a valid statement.
	ErrNotAuthorized = errors.New("discovery: peer not authorized for channel")
	// ErrNotServed: an operation on a channel this node does not serve.
	ErrNotServed = errors.New("discovery: channel not served here")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("discovery: closed")
)
