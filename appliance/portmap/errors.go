package portmap

import (
	"errors"
	"fmt"

	"github.com/huin/goupnp/soap"
)

// Sentinel errors callers branch on.
var (
	// ErrNoGateway means no UPnP internet gateway answered.
	ErrNoGateway = errors.New("portmap: no UPnP gateway found")
	// ErrRefused means the gateway answered but refused a request; the
	// wrapped *UPnPError says why.
	ErrRefused = errors.New("portmap: gateway refused")
	// ErrClosed means the Mapper was closed.
	ErrClosed = errors.New("portmap: mapper closed")
)

// UPnP error codes the Mapper acts on (UPnP IGD WANIPConnection:2 §2.5).
const (
	codeInvalidArgs          = 402
	codeActionFailed         = 501
	codeNotAuthorized        = 606
	codeNoSuchEntry          = 714
	codeConflict             = 718
	codeSamePortRequired     = 724
	codeOnlyPermanentLeases  = 725
	codeConflictWithOtherMec = 729
)

// UPnPError is a refusal from the gateway: its UPnP error code and text.
type UPnPError struct {
	Code        int
	Description string
}

func (e *UPnPError) Error() string {
	return fmt.Sprintf("UPnP error %d (%s)", e.Code, e.Description)
}

// Is lets errors.Is(err, ErrRefused) match any UPnP refusal.
func (e *UPnPError) Is(target error) bool { return target == ErrRefused }

// upnpError turns a SOAP fault from goupnp into *UPnPError; other errors
// (network, HTTP) are returned as they are.
func upnpError(err error) error {
	var fault *soap.SOAPFaultError
	if errors.As(err, &fault) {
		desc := fault.Detail.UPnPError.ErrorDescription
		if desc == "" {
			desc = fault.FaultString
		}
		return &UPnPError{Code: fault.Detail.UPnPError.Errorcode, Description: desc}
	}
	return err
}

func upnpCode(err error) int {
	var ue *UPnPError
	if errors.As(err, &ue) {
		return ue.Code
	}
	return 0
}
