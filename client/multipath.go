package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/redpanda-p2p/homenode/node/control"
	"sort"
	"sync"
)

// Multi-path key agreement through friends (paper §4.3): two people who
// share no channel but share friends run one X25519 exchange over each of
// up to MaxPaths disjoint friend paths, and the channel's root secret is
// SHA-256 over the concatenated shared secrets in a fixed order. Someone
// who controls some paths learns those shared secrets but not the others,
// so one honest path keeps the secret out of reach; if every path is
// controlled, the two sides end with different secrets and the safety
// codes differ.

// MaxPaths bounds the paths of one agreement.
const MaxPaths = control.MaxFriendPaths

// Role says which side of an agreement a party is; the two parties must
// take different roles (the one who starts is the Initiator).
type Role byte

const (
	Initiator Role = 1
	Responder Role = 2
)

// Relay is one friend path: it carries messages to the other party and
// back, through the friends on the way. How (channels of the friends,
// a chain of forwards) is the caller's concern; a relay may be run by an
// attacker, which is what the agreement is built to survive.
type Relay interface {
	Send(ctx context.Context, msg []byte) error
	Receive(ctx context.Context) ([]byte, error)
}

// Errors of the multi-path agreement.
var (
	// ErrBadPathMessage: a path delivered something that is not a key
	// message of this protocol, or one from the wrong role.
	ErrBadPathMessage = errors.New("client: bad multi-path key message")
	// ErrPathFailed: a path did not complete its exchange.
	ErrPathFailed = errors.New("client: a friend path failed")
	// ErrNoHonestPath: no path carried the same keys to both sides.
	ErrNoHonestPath = errors.New("client: no friend path is untampered")
)

const (
	pathMsgVersion = 1
	pathMsgSize    = 2 + x25519Size // version || role || X25519 public key
	labelMultiPath = "redpanda/v2/multipath-root"
	labelConfirm   = "redpanda/v2/multipath-confirm"
)

// MultiPath is the result of an agreement.
type MultiPath struct {
	Secret     []byte // 32 bytes: the new channel's root secret
	SafetyCode string // compare it: differs if every path was tampered with
	Paths      int    // paths whose exchange both sides saw alike
	Dropped    []int  // indices (from 0, in the caller's order) of paths found tampered with
}

type pathResult struct {
	initiatorPub []byte
	responderPub []byte
	shared       []byte
}

// transcript is the pair of public keys a path carried, as one side saw it.
func (r pathResult) transcript() []byte {
	return append(append([]byte(nil), r.initiatorPub...), r.responderPub...)
}

// AgreeMultiPath runs the agreement on relays, all concurrently, in two
// rounds. Round one: one X25519 exchange per path. Round two: on every
// path, each side sends the list of key pairs it saw on all paths,
// authenticated with a key derived from that path's shared secret. An
// honest path delivers the other side's true list, which a man in the
// middle cannot forge; a path whose key pair is missing from any list
// that verifies is dropped. So with at least one honest path both sides
// keep the same honest paths; the secret is SHA-256 over their shared
// secrets in a fixed order. If every path is controlled, the controller
// can make both sides keep all paths, and the safety codes differ.
func AgreeMultiPath(ctx context.Context, role Role, relays []Relay) (*MultiPath, error) {
	if role != Initiator && role != Responder {
		return nil, fmt.Errorf("client.AgreeMultiPath: role %d", role)
	}
	if len(relays) == 0 || len(relays) > MaxPaths {
		return nil, fmt.Errorf("client.AgreeMultiPath: %d paths, want 1 to %d", len(relays), MaxPaths)
	}
	results := make([]pathResult, len(relays))
	err := onEachPath(relays, func(i int, r Relay) (err error) {
		results[i], err = exchangeOnPath(ctx, role, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client.AgreeMultiPath: %w", err)
	}
	var list []byte
	for _, r := range results {
		list = append(list, r.transcript()...)
	}
	lists := make([][]byte, len(relays))
	err = onEachPath(relays, func(i int, r Relay) (err error) {
		lists[i], err = confirmOnPath(ctx, r, results[i].shared, list)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client.AgreeMultiPath: %w", err)
	}
	mp := &MultiPath{}
	var kept []pathResult
	for i, r := range results {
		seen := true
		for _, l := range lists {
			seen = seen && containsTranscript(l, r.transcript())
		}
		if seen {
			kept = append(kept, r)
		} else {
			mp.Dropped = append(mp.Dropped, i)
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("client.AgreeMultiPath: %w: every path was tampered with", ErrNoHonestPath)
	}
	mp.Secret = combinePaths(kept)
	mp.SafetyCode, mp.Paths = SafetyCode(mp.Secret), len(kept)
	return mp, nil
}

// onEachPath runs fn for every relay concurrently and joins the errors,
// each naming its path.
func onEachPath(relays []Relay, fn func(i int, r Relay) error) error {
	errs := make([]error, len(relays))
	var wg sync.WaitGroup
	for i, r := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i, r); err != nil {
				errs[i] = fmt.Errorf("path %d: %w", i+1, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func containsTranscript(list, t []byte) bool {
	for o := 0; o+len(t) <= len(list); o += len(t) {
		if bytes.Equal(list[o:o+len(t)], t) {
			return true
		}
	}
	return false
}

// combinePaths orders the paths by the initiator's public key on each,
// which both sides see the same way on an honest path whatever order the
// caller listed the relays in, and hashes the shared secrets.
func combinePaths(rs []pathResult) []byte {
	rs = append([]pathResult(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return bytes.Compare(rs[i].initiatorPub, rs[j].initiatorPub) < 0 })
	h := sha256.New()
	h.Write([]byte(labelMultiPath + "\x00"))
	for _, r := range rs {
		h.Write(r.shared)
	}
	return h.Sum(nil)
}

func exchangeOnPath(ctx context.Context, role Role, r Relay) (pathResult, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return pathResult{}, err
	}
	mine := priv.PublicKey().Bytes()
	if err := r.Send(ctx, append([]byte{pathMsgVersion, byte(role)}, mine...)); err != nil {
		return pathResult{}, fmt.Errorf("%w: send: %v", ErrPathFailed, err)
	}
	msg, err := r.Receive(ctx)
	if err != nil {
		return pathResult{}, fmt.Errorf("%w: receive: %v", ErrPathFailed, err)
	}
	peerRole, peerPub, err := ParsePathMessage(msg)
	if err != nil {
		return pathResult{}, err
	}
	if peerRole == role {
		return pathResult{}, fmt.Errorf("%w: the other side also claims role %d (a reflected message?)", ErrBadPathMessage, role)
	}
	pub, _ := ecdh.X25519().NewPublicKey(peerPub)
	shared, err := priv.ECDH(pub)
	if err != nil {
		return pathResult{}, fmt.Errorf("%w: %v", ErrBadPathMessage, err)
	}
	if role == Initiator {
		return pathResult{initiatorPub: mine, responderPub: peerPub, shared: shared}, nil
	}
	return pathResult{initiatorPub: peerPub, responderPub: mine, shared: shared}, nil
}

// confirmOnPath sends this side's list of key pairs on the path, MACed
// with the path's shared secret, and returns the other side's list once
// its MAC verifies.
func confirmOnPath(ctx context.Context, r Relay, shared, list []byte) ([]byte, error) {
	macKey, _ := hkdf.Key(sha256.New, shared, nil, labelConfirm, sha256.Size)
	if err := r.Send(ctx, sealConfirm(macKey, list)); err != nil {
		return nil, fmt.Errorf("%w: send: %v", ErrPathFailed, err)
	}
	msg, err := r.Receive(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: receive: %v", ErrPathFailed, err)
	}
	return OpenConfirmMessage(macKey, msg)
}

func sealConfirm(macKey, list []byte) []byte {
	m := append([]byte{pathMsgVersion, byte(len(list) / (2 * x25519Size))}, list...)
	mac := hmac.New(sha256.New, macKey)
	mac.Write(m)
	return mac.Sum(m)
}

// OpenConfirmMessage checks a round-two message with the path's MAC key
// and returns the list of key pairs (64 bytes each) it carries.
func OpenConfirmMessage(macKey, msg []byte) ([]byte, error) {
	if len(msg) < 2+sha256.Size {
		return nil, fmt.Errorf("%w: confirmation of %d bytes", ErrBadPathMessage, len(msg))
	}
	body, tag := msg[:len(msg)-sha256.Size], msg[len(msg)-sha256.Size:]
	if body[0] != pathMsgVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadPathMessage, body[0])
	}
	n := int(body[1])
	if n < 1 || n > MaxPaths || len(body) != 2+n*2*x25519Size {
		return nil, fmt.Errorf("%w: confirmation claims %d paths in %d bytes", ErrBadPathMessage, n, len(body))
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), tag) {
		return nil, fmt.Errorf("%w: confirmation MAC does not verify", ErrBadPathMessage)
	}
	return append([]byte(nil), body[2:]...), nil
}

// ParsePathMessage decodes one key message that came over a friend path.
func ParsePathMessage(msg []byte) (Role, []byte, error) {
	if len(msg) != pathMsgSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadPathMessage, len(msg), pathMsgSize)
	}
	if msg[0] != pathMsgVersion {
		return 0, nil, fmt.Errorf("%w: version %d", ErrBadPathMessage, msg[0])
	}
	role := Role(msg[1])
	if role != Initiator && role != Responder {
		return 0, nil, fmt.Errorf("%w: role %d", ErrBadPathMessage, msg[1])
	}
	return role, append([]byte(nil), msg[2:]...), nil
}

// agreeThroughFriends implements Friends.AgreeOver.
func (c *Client) agreeThroughFriends(ctx context.Context, name string, role Role, relays []Relay) (*Agreement, error) {
	mp, err := AgreeMultiPath(ctx, role, relays)
	if err != nil {
		return nil, err
	}
	ag, err := c.agree(name, mp.Secret)
	if err != nil {
		return nil, fmt.Errorf("client.Friends.AgreeOver: %w", err)
	}
	return ag, nil
}
