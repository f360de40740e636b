package routing

import (
	"errors"
	"fmt"
)

// Sentinel errors of chain verification; Chain.Verify wraps them with the
// ticket at fault.
var (
	ErrForgedTicket    = errors.New("routing: forged ticket (signature does not verify)")
	ErrExpiredTicket   = errors.New("routing: expired ticket")
	ErrChainNotToOwner = errors.New("routing: chain does not lead to this node's owner")
	ErrWrongSubject    = errors.New("routing: chain was issued to another identity")
	ErrHopTooFar       = errors.New("routing: chain longer than the hop limit")
	ErrRevoked         = errors.New("routing: identity revoked")
)

// Other sentinels callers branch on.
var (
	// ErrMalformed: bytes (a chain string, a frame, an advert) do not decode.
	ErrMalformed = errors.New("routing: malformed")
	// ErrRefused: a node refused a registration; the error is a *RefusedError.
	ErrRefused = errors.New("routing: registration refused")
	// ErrClosed: the registry is closed.
	ErrClosed = errors.New("routing: registry closed")
	// ErrRevokeOwner: the owner cannot be revoked; re-pair instead.
	ErrRevokeOwner = errors.New("routing: cannot revoke the node's owner")
)

// RefusedError is a node's refusal of a registration, or its notice that a
// registration ended. errors.Is(err, ErrRefused) holds.
type RefusedError struct {
	Status Status
	Detail string
}

func (e *RefusedError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("routing: registration refused: %s", e.Status)
	}
	return fmt.Sprintf("routing: registration refused: %s: %s", e.Status, e.Detail)
}

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }
