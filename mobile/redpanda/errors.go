package redpanda

import (
	"context"
	"errors"
	"strings"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/hint"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// Error codes: what ErrorCode returns for an error of this package. An
// app switches on them; the message is for people and logs. A code is
// never renumbered or reused; new ones are added at the end.
// docs/MOBILE.md lists them with what an app should do.
const (
	CodeInternal          = 1  // a bug, a full disk or a broken home: show the message, report it
	CodeBadInput          = 2  // an argument is malformed or out of range
	CodeClosed            = 3  // the client was closed
	CodeTimeout           = 4  // the call's timeout passed
	CodeCancelled         = 5  // the call's Cancel was cancelled
	CodePaused            = 6  // Pause interrupted the call; call it again (it runs while paused)
	CodeNotInitialised    = 7  // the home holds no identity: Open with create, restore a backup or join a device
	CodeLocked            = 8  // another process has the home open
	CodeUnknownChannel    = 9  // no channel of that name
	CodeChannelExists     = 10 // a channel of that name, or that channel under another name, exists
	CodeBadName           = 11 // a channel name that is empty, too long, or has spaces
	CodeBadKey            = 12 // not a key string (a channel key, an identity): mistyped, truncated, damaged
	CodeCannotWrite       = 13 // the channel key is read-only
	CodeCannotRead        = 14 // the channel key is write-only
	CodeBlocked           = 15 // the channel is blocked (BlockChannel)
	CodeNoNodes           = 16 // no home node known: pair one, or get a ticket whose hint names one
	CodeUnreachable       = 17 // no node answered; the client keeps trying while resumed
	CodeNotOwner          = 18 // this client owns no node, or the node has another owner
	CodeBadPairingCode    = 19 // not a redPanda pairing code (RPPAIR1:)
	CodePairingRejected   = 20 // the node refused the code: scan its current QR code
	CodeNodeNotWaiting    = 21 // the node already has an owner: factory-reset it to pair again
	CodeNodeBusy          = 22 // the node is busy with other pairing attempts: retry in a minute
	CodeNodeFailed        = 23 // the node could not complete the request: retry, check the node
	CodeBadTicket         = 24 // not a hop ticket for this identity, or expired
	CodeBadInvitation     = 25 // not an invitation or answer string
	CodeUnknownInvitation = 26 // an answer to an invitation this home did not make
	CodeInvitationExpired = 27 // the invitation is older than 7 days: send a new one
	CodeBadLink           = 28 // not a device link string
	CodeLinkExpired       = 29 // the device link is past its lifetime: make a new one
	CodeNoBackup          = 30 // the node keeps no backup for this passphrase
	CodeWrongPassphrase   = 31 // the passphrase does not open the backup
	CodeCorruptBackup     = 32 // the backup is damaged or not a backup
	CodeWeakPassphrase    = 33 // the passphrase is shorter than 10 characters
	CodeHomeNotEmpty      = 34 // restoring or joining into a home that holds an identity
	CodeBadContact        = 35 // not a phone number or e-mail address
	CodeNoFriendChannels  = 36 // no channel to ask friends through
	CodeUnknownNode       = 37 // no node of that peer ID is known
	CodeUnknownMessage    = 38 // no message of that ID in the channel
	CodeRateLimited       = 39 // the node refuses more attempts from this address for now
)

// codeNames are the codes' stable names: the prefix of every message.
var codeNames = map[int]string{
	CodeInternal: "internal", CodeBadInput: "bad_input", CodeClosed: "closed", CodeTimeout: "timeout",
	CodeCancelled: "cancelled", CodePaused: "paused", CodeNotInitialised: "not_initialised", CodeLocked: "locked",
	CodeUnknownChannel: "unknown_channel", CodeChannelExists: "channel_exists", CodeBadName: "bad_name",
	CodeBadKey: "bad_key", CodeCannotWrite: "cannot_write", CodeCannotRead: "cannot_read", CodeBlocked: "blocked",
	CodeNoNodes: "no_nodes", CodeUnreachable: "unreachable", CodeNotOwner: "not_owner",
	CodeBadPairingCode: "bad_pairing_code", CodePairingRejected: "pairing_rejected",
	CodeNodeNotWaiting: "node_not_waiting", CodeNodeBusy: "node_busy", CodeNodeFailed: "node_failed",
	CodeBadTicket: "bad_ticket", CodeBadInvitation: "bad_invitation", CodeUnknownInvitation: "unknown_invitation",
	CodeInvitationExpired: "invitation_expired", CodeBadLink: "bad_link", CodeLinkExpired: "link_expired",
	CodeNoBackup: "no_backup", CodeWrongPassphrase: "wrong_passphrase", CodeCorruptBackup: "corrupt_backup",
	CodeWeakPassphrase: "weak_passphrase", CodeHomeNotEmpty: "home_not_empty", CodeBadContact: "bad_contact",
	CodeNoFriendChannels: "no_friend_channels", CodeUnknownNode: "unknown_node",
	CodeUnknownMessage: "unknown_message", CodeRateLimited: "rate_limited",
}

// sentinels map what the layers below return to codes, most specific
// first.
var sentinels = []struct {
	err  error
	code int
}{
	{client.ErrNotInitialised, CodeNotInitialised},
	{client.ErrLocked, CodeLocked},
	{client.ErrUnknownChannel, CodeUnknownChannel},
	{client.ErrChannelExists, CodeChannelExists},
	{client.ErrBadName, CodeBadName},
	{client.ErrCannotWrite, CodeCannotWrite},
	{client.ErrCannotRead, CodeCannotRead},
	{channel.ErrCannotWrite, CodeCannotWrite},
	{channel.ErrCannotRead, CodeCannotRead},
	{client.ErrBlocked, CodeBlocked},
	{client.ErrNoNodes, CodeNoNodes},
	{client.ErrClosed, CodeClosed},
	{client.ErrNotOwned, CodeNotOwner},
	{owner.ErrNotOwner, CodeNotOwner},
	{client.ErrBadInvitation, CodeBadInvitation},
	{client.ErrWrongInvitationKind, CodeBadInvitation},
	{client.ErrUnknownInvitation, CodeUnknownInvitation},
	{client.ErrInvitationExpired, CodeInvitationExpired},
	{client.ErrBadLink, CodeBadLink},
	{client.ErrLinkExpired, CodeLinkExpired},
	{client.ErrWrongPassphrase, CodeWrongPassphrase},
	{client.ErrCorruptBackup, CodeCorruptBackup},
	{client.ErrWeakPassphrase, CodeWeakPassphrase},
	{client.ErrHomeNotEmpty, CodeHomeNotEmpty},
	{client.ErrBadContact, CodeBadContact},
	{client.ErrNoFriendChannels, CodeNoFriendChannels},
	{client.ErrUnknownNode, CodeUnknownNode},
	{client.ErrUnknownMessage, CodeUnknownMessage},
	{owner.ErrNoBackup, CodeNoBackup},
	{owner.ErrRateLimited, CodeRateLimited},
	{owner.ErrTooLarge, CodeBadInput},
	{provisioning.ErrBadURI, CodeBadPairingCode},
	{provisioning.ErrRejected, CodePairingRejected},
	{provisioning.ErrNotWaiting, CodeNodeNotWaiting},
	{provisioning.ErrBusy, CodeNodeBusy},
	{provisioning.ErrNodeFailed, CodeNodeFailed},
	{routing.ErrForgedTicket, CodeBadTicket},
	{routing.ErrExpiredTicket, CodeBadTicket},
	{routing.ErrWrongSubject, CodeBadTicket},
	{routing.ErrHopTooFar, CodeBadTicket},
	{routing.ErrMalformed, CodeBadTicket},
	{channel.ErrUnknownPrefix, CodeBadKey},
	{channel.ErrInvalidCharacter, CodeBadKey},
	{channel.ErrChecksum, CodeBadKey},
	{channel.ErrKeyLength, CodeBadKey},
	{channel.ErrBadKey, CodeBadKey},
	{hint.ErrMalformed, CodeBadInput},
}

// codeError is every error this package returns: a code and the error
// it classifies.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return codeNames[e.code] + ": " + e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// fail classifies err: by the sentinels it wraps, else as fallback. A nil
// err stays nil; an error already classified keeps its code.
func fail(err error, fallback int) error {
	if err == nil {
		return nil
	}
	if code, ok := classify(err); ok {
		return &codeError{code: code, err: err}
	}
	return &codeError{code: fallback, err: err}
}

// classify returns the code of an error already classified or of a
// sentinel it wraps.
func classify(err error) (int, bool) {
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code, true
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code, true
		}
	}
	return 0, false
}

// failCode makes an error of code from a message.
func failCode(code int, msg string) error { return &codeError{code: code, err: errors.New(msg)} }

// ctxFail classifies the error of a long call: what it says when it
// names a sentinel, else, if the call's context ended, why (the app's
// Cancel, a Pause or Close, or the timeout), else fallback.
func ctxFail(err error, ctx context.Context, cancel *Cancel, epochEnded func() int, fallback int) error {
	if err == nil {
		return nil
	}
	if _, ok := classify(err); ok {
		return fail(err, fallback)
	}
	if ctx.Err() != nil {
		switch {
		case cancel != nil && cancel.IsCancelled():
			return &codeError{code: CodeCancelled, err: err}
		case epochEnded() != 0:
			return &codeError{code: epochEnded(), err: err}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return &codeError{code: CodeTimeout, err: err}
		}
	}
	return fail(err, fallback)
}

// ErrorCode returns the code of an error this package returned (a Java or
// Kotlin Exception, an NSError in Swift), or CodeInternal for any other
// error. It reads the code from the error itself, or, for an error that
// crossed into the app and lost its Go value, from its message's prefix.
func ErrorCode(err error) int {
	if err == nil {
		return 0
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return ErrorCodeOf(err.Error())
}

// ErrorCodeOf returns the code an error message starts with ("not_owner:
// …"), or CodeInternal.
func ErrorCodeOf(message string) int {
	name, _, ok := strings.Cut(message, ":")
	if ok {
		for code, n := range codeNames {
			if n == name {
				return code
			}
		}
	}
	return CodeInternal
}

// ErrorName returns the stable name of a code ("not_owner"), or "" for a
// number that is not a code.
func ErrorName(code int) string { return codeNames[code] }
