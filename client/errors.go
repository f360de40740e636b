package client

import "errors"

// Sentinel errors callers branch on; test with errors.Is.
var (
	// ErrNotInitialised: the home directory holds no client; run Init.
	ErrNotInitialised = errors.New("client: home not initialised")
	// ErrLocked: another process has the home open.
	ErrLocked = errors.New("client: home in use by another process")
	// ErrUnknownChannel: no channel of that name.
	ErrUnknownChannel = errors.New("client: unknown channel")
	// ErrChannelExists: a channel of that name, or that channel under
	// another name, is already there.
	ErrChannelExists = errors.New("client: channel already exists")
	// ErrNoNodes: no super node is known; add one first.
	ErrNoNodes = errors.New("client: no super nodes known")
	// ErrNotDelivered: no super node acknowledged the message. It is kept
	// locally and goes out when a node is reachable again.
	ErrNotDelivered = errors.New("client: no super node acknowledged the message")
	// ErrCannotWrite / ErrCannotRead: the channel key lacks the capability.
	ErrCannotWrite = errors.New("client: this channel key cannot write")
	ErrCannotRead  = errors.New("client: this channel key cannot read")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrBadName: a channel name that is empty, too long or not printable.
	ErrBadName = errors.New("client: bad channel name")
)
