package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Errors a person reads: libp2p's dial errors list every address with its
// own cause (600 characters for one node with four addresses), and a
// refusal names the node's internal policy. These turn both into one line
// that says what happened and what to do.

// ErrUnreachable: no address of a node answered.
var ErrUnreachable = errors.New("client: node unreachable")

// UnreachableError is a failed dial, summed up in one line. It matches
// ErrUnreachable and unwraps to libp2p's error.
type UnreachableError struct {
	Peer peer.ID
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("node %s is unreachable: %s", shortID(e.Peer), dialSummary(e.Err))
}

func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// shortID is a peer ID as people compare it: head and tail.
func shortID(p peer.ID) string {
	s := p.String()
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// dialSummary is the causes of a failed dial, each with the addresses it
// hit ("connection refused at /ip4/192.168.1.5/tcp/4001; timed out at 2
// other addresses").
func dialSummary(err error) string {
	var de *swarm.DialError
	if !errors.As(err, &de) || len(de.DialErrors) == 0 {
		if de != nil && de.Cause != nil {
			return shortCause(de.Cause)
		}
		return shortCause(err)
	}
	byCause := map[string][]string{}
	for _, te := range de.DialErrors {
		c := shortCause(te.Cause)
		byCause[c] = append(byCause[c], te.Address.String())
	}
	causes := make([]string, 0, len(byCause))
	for c := range byCause {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	parts := make([]string, 0, len(causes))
	for _, c := range causes {
		addrs := byCause[c]
		if len(addrs) == 1 {
			parts = append(parts, c+" at "+addrs[0])
		} else {
			parts = append(parts, fmt.Sprintf("%s at %d addresses", c, len(addrs)))
		}
	}
	return strings.Join(parts, "; ")
}

// shortCause names one dial failure in a few words.
func shortCause(err error) string {
	var mismatch sec.ErrPeerIDMismatch
	var ne net.Error
	switch {
	case err == nil:
		return "no reason given"
	case errors.As(err, &mismatch):
		return "another node answers there (peer ID mismatch)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, swarm.ErrDialBackoff):
		return "failed moments ago (backing off)"
	case errors.Is(err, swarm.ErrNoAddresses), errors.Is(err, swarm.ErrNoGoodAddresses):
		return "no usable address known"
	case errors.Is(err, network.ErrResourceLimitExceeded):
		return "the node is at its connection limit"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}

// noteDial turns err into an *UnreachableError when it is a failed dial
// to p (else nil), and remembers the reason: a dial libp2p then refuses
// as "backing off", or one cut short before any address answered, is
// reported with the reason of the one before.
func (c *Client) noteDial(p peer.ID, err error) *UnreachableError {
	var de *swarm.DialError
	var ue *UnreachableError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.Is(err, swarm.ErrDialBackoff):
		if last, ok := c.lastDial.Load(p); ok {
			return last.(*UnreachableError)
		}
		return &UnreachableError{Peer: p, Err: err}
	case errors.As(err, &de):
		ue = &UnreachableError{Peer: p, Err: err}
		if len(de.DialErrors) > 0 { // what each address said: the reason
			c.lastDial.Store(p, ue)
		} else if last, ok := c.lastDial.Load(p); ok {
			return last.(*UnreachableError) // only "timed out" this time
		}
		return ue
	case errors.Is(err, context.DeadlineExceeded) && len(c.h.Network().ConnsToPeer(p)) == 0:
		// The dial ran out of time before any address answered.
		if last, ok := c.lastDial.Load(p); ok {
			return last.(*UnreachableError)
		}
		return &UnreachableError{Peer: p, Err: err}
	}
	return nil
}

// pushFailure is one line for a node that did not take a message.
func (c *Client) pushFailure(p peer.ID, err error) string {
	var rej *peersync.RejectError
	switch {
	case errors.As(err, &rej) && rej.Reason == wirepb.Reason_REASON_NOT_ACCEPTED:
		return fmt.Sprintf("node %s does not take this channel from you: you are not registered there for it, "+
			"or its owner blocked the channel. Ask the node's owner for a hop ticket: they run "+
			"`redpanda ticket issue %s` and send you what it prints, then you run `redpanda ticket set CHAIN`",
			shortID(p), c.ID())
	case errors.As(err, &rej):
		return fmt.Sprintf("node %s refused the message: %s", shortID(p), rej.Reason)
	}
	if ue := c.noteDial(p, err); ue != nil {
		return ue.Error()
	}
	return fmt.Sprintf("node %s: %s", shortID(p), shortCause(err))
}
