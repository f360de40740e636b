package routing

import (
	"fmt"

	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Status is a node's answer to a registration, or the reason one ended.
// The values are those of wirepb.RegisterStatus.
type Status int32

// Statuses.
const (
	StatusOK            = Status(wirepb.RegisterStatus_REGISTER_STATUS_OK)
	StatusBadChain      = Status(wirepb.RegisterStatus_REGISTER_STATUS_BAD_CHAIN)
	StatusHopTooFar     = Status(wirepb.RegisterStatus_REGISTER_STATUS_HOP_TOO_FAR)
	StatusFull          = Status(wirepb.RegisterStatus_REGISTER_STATUS_FULL)
	StatusEvicted       = Status(wirepb.RegisterStatus_REGISTER_STATUS_EVICTED)
	StatusBadSignature  = Status(wirepb.RegisterStatus_REGISTER_STATUS_BAD_SIGNATURE)
	StatusRateLimited   = Status(wirepb.RegisterStatus_REGISTER_STATUS_RATE_LIMITED)
	StatusNotAllowed    = Status(wirepb.RegisterStatus_REGISTER_STATUS_NOT_ALLOWED)
	StatusQuotaExceeded = Status(wirepb.RegisterStatus_REGISTER_STATUS_QUOTA_EXCEEDED)
	StatusReplay        = Status(wirepb.RegisterStatus_REGISTER_STATUS_REPLAY)
	StatusMalformed     = Status(wirepb.RegisterStatus_REGISTER_STATUS_MALFORMED)
	StatusRevoked       = Status(wirepb.RegisterStatus_REGISTER_STATUS_REVOKED)
	StatusInternal      = Status(wirepb.RegisterStatus_REGISTER_STATUS_INTERNAL)
)

var statusNames = map[Status]string{
	StatusOK: "ok", StatusBadChain: "bad chain", StatusHopTooFar: "hop too far",
	StatusFull: "node full", StatusEvicted: "evicted", StatusBadSignature: "bad signature",
	StatusRateLimited: "rate limited", StatusNotAllowed: "not allowed",
	StatusQuotaExceeded: "quota exceeded", StatusReplay: "replay",
	StatusMalformed: "malformed request", StatusRevoked: "revoked", StatusInternal: "internal error",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %d", int32(s))
}
