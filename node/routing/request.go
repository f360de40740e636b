package routing

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// Protocol IDs. Notices have their own protocol so that a host can be a
// node and a client at once without the two handlers colliding.
const (
	ProtocolID       = "/redpanda/register/1.0.0"
	NoticeProtocolID = "/redpanda/register/notice/1.0.0"
)

// Frame caps. A request holds at most MaxChannelsPerRequest channel IDs
// (whatever Config.MaxChannels says) and a chain of MaxHop tickets.
const (
	MaxChannelsPerRequest = 1024
	MaxRequestSize        = 64 << 10
	MaxResponseSize       = 4 << 10
	MaxDetail             = 512 // characters of detail a node sends
)

// requestDomain separates registration signatures from every other use of
// an identity key.
const requestDomain = "redpanda/register-request/v1\x00"

// request is a decoded RegisterRequest whose form has been checked; its
// signature has not.
type request struct {
	Identity  channel.IdentityKey
	Chain     Chain
	Channels  []channel.ID
	Timestamp time.Time
	Peer      peer.ID
	Nonce     []byte
	Signature []byte
}

// nonceSize is the length of a request's random nonce.
const nonceSize = 16

// signedBytes covers every field but the signature, each length-prefixed
// or fixed-size so no two requests share them.
func (r *request) signedBytes() []byte {
	b := append([]byte(nil), r.Identity[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixMilli()))
	pid := []byte(r.Peer)
	b = binary.AppendUvarint(b, uint64(len(pid)))
	b = append(b, pid...)
	b = append(b, r.Nonce...)
	b = binary.AppendUvarint(b, uint64(len(r.Channels)))
	for _, ch := range r.Channels {
		b = append(b, ch[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Chain)))
	for _, t := range r.Chain {
		b = append(b, t.signedBytes()...)
		b = append(b, t.Signature...)
	}
	return b
}

func (r *request) sign(id *channel.Identity) { r.Signature = id.Sign(requestDomain, r.signedBytes()) }

func (r *request) verifySignature() bool {
	return r.Identity.Verify(requestDomain, r.signedBytes(), r.Signature)
}

func (r *request) encode() ([]byte, error) {
	chs := make([][]byte, len(r.Channels))
	for i := range r.Channels {
		chs[i] = r.Channels[i][:]
	}
	return proto.Marshal(&wirepb.RegisterRequest{Identity: r.Identity[:], Chain: r.Chain.toPB(), Channels: chs,
		Timestamp: r.Timestamp.UnixMilli(), Signature: r.Signature, Peer: []byte(r.Peer), Nonce: r.Nonce})
}

// decodeRequest parses a RegisterRequest frame and checks its form.
func decodeRequest(b []byte) (*request, error) {
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("%w: request of %d bytes, at most %d", ErrMalformed, len(b), MaxRequestSize)
	}
	var pb wirepb.RegisterRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: request: %v", ErrMalformed, err)
	}
	r := &request{Timestamp: time.UnixMilli(pb.GetTimestamp())}
	if len(pb.GetIdentity()) != len(r.Identity) {
		return nil, fmt.Errorf("%w: identity is %d bytes, want %d", ErrMalformed, len(pb.GetIdentity()), len(r.Identity))
	}
	copy(r.Identity[:], pb.GetIdentity())
	if len(pb.GetSignature()) != 64 {
		return nil, fmt.Errorf("%w: signature is %d bytes, want 64", ErrMalformed, len(pb.GetSignature()))
	}
	r.Signature = pb.GetSignature()
	if len(pb.GetNonce()) != nonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(pb.GetNonce()), nonceSize)
	}
	r.Nonce = pb.GetNonce()
	p, err := peer.IDFromBytes(pb.GetPeer())
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID: %v", ErrMalformed, err)
	}
	r.Peer = p
	if r.Chain, err = chainFromPB(pb.GetChain()); err != nil {
		return nil, err
	}
	if n := len(pb.GetChannels()); n > MaxChannelsPerRequest {
		return nil, fmt.Errorf("%w: %d channels, at most %d per request", ErrMalformed, n, MaxChannelsPerRequest)
	}
	seen := make(map[channel.ID]bool, len(pb.GetChannels()))
	for i, c := range pb.GetChannels() {
		var id channel.ID
		if len(c) != len(id) {
			return nil, fmt.Errorf("%w: channel %d is %d bytes, want %d", ErrMalformed, i, len(c), len(id))
		}
		copy(id[:], c)
		if seen[id] {
			return nil, fmt.Errorf("%w: channel %d repeats an earlier one", ErrMalformed, i)
		}
		seen[id] = true
		r.Channels = append(r.Channels, id)
	}
	return r, nil
}

// response is a decoded RegisterResponse.
type response struct {
	Status  Status
	Hop     int
	Expires time.Time
	Detail  string
	Load    Load
}

func (r *response) encode() ([]byte, error) {
	pb := &wirepb.RegisterResponse{Status: wirepb.RegisterStatus(r.Status), Expires: r.Expires.UnixMilli(),
		Detail: truncate(r.Detail, MaxDetail), Registered: uint32(r.Load.Registered), Capacity: uint32(r.Load.Capacity)}
	if r.Expires.IsZero() {
		pb.Expires = 0
	}
	if r.Hop == HopInfinity {
		pb.HopInfinity = true
	} else {
		pb.Hop = uint32(r.Hop)
	}
	return proto.Marshal(pb)
}

func decodeResponse(b []byte) (*response, error) {
	var pb wirepb.RegisterResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: response: %v", ErrMalformed, err)
	}
	if pb.GetStatus() == wirepb.RegisterStatus_REGISTER_STATUS_UNSPECIFIED {
		return nil, fmt.Errorf("%w: response without a status", ErrMalformed)
	}
	if pb.GetHop() > MaxHop {
		return nil, fmt.Errorf("%w: response hop %d beyond %d", ErrMalformed, pb.GetHop(), MaxHop)
	}
	if pb.GetRegistered() > 1<<24 || pb.GetCapacity() > 1<<24 {
		return nil, fmt.Errorf("%w: response load %d/%d out of range", ErrMalformed, pb.GetRegistered(), pb.GetCapacity())
	}
	r := &response{Status: Status(pb.GetStatus()), Hop: int(pb.GetHop()), Detail: truncate(pb.GetDetail(), MaxDetail),
		Load: Load{Registered: int(pb.GetRegistered()), Capacity: int(pb.GetCapacity())}}
	if pb.GetHopInfinity() {
		r.Hop = HopInfinity
	}
	if pb.GetExpires() != 0 {
		r.Expires = time.UnixMilli(pb.GetExpires())
	}
	return r, nil
}

// Notice tells a client that its registration at Node ended, and why.
type Notice struct {
	Node   peer.ID
	Status Status
	Detail string
	At     time.Time
}

func encodeNotice(n Notice) ([]byte, error) {
	return proto.Marshal(&wirepb.RegisterNotice{Status: wirepb.RegisterStatus(n.Status),
		Detail: truncate(n.Detail, MaxDetail), Timestamp: n.At.UnixMilli()})
}

func decodeNotice(b []byte) (Notice, error) {
	var pb wirepb.RegisterNotice
	if err := proto.Unmarshal(b, &pb); err != nil {
		return Notice{}, fmt.Errorf("%w: notice: %v", ErrMalformed, err)
	}
	switch st := Status(pb.GetStatus()); st {
	case StatusEvicted, StatusRevoked:
	default:
		return Notice{}, fmt.Errorf("%w: notice with status %s", ErrMalformed, st)
	}
	return Notice{Status: Status(pb.GetStatus()), Detail: truncate(pb.GetDetail(), MaxDetail),
		At: time.UnixMilli(pb.GetTimestamp())}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	// proto3 strings must be UTF-8: a cut rune or a peer's junk would make
	// Marshal fail.
	return strings.ToValidUTF8(s, "?")
}
