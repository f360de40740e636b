package control

import "fmt"

// A FriendPath body: the tag, the version, hop, paths and seq (a byte
// each), the addressee's and the sender's identity keys, the session and
// the payload.
const (
	FriendPathVersion = 1
	FriendSessionSize = 16
	FriendPathHeader  = 5 + 32 + 32 + FriendSessionSize
	MaxFriendPayload  = 1024 // a confirmation of MaxFriendPaths paths is 546 bytes
	MaxFriendPaths    = 8    // paths of one session
)

// FriendFrame is one friend-path message.
type FriendFrame struct {
	Hop     byte     // 0: posted by the sender, 1: forwarded by a friend
	Paths   byte     // how many paths the sender's session has (1..MaxFriendPaths)
	Seq     byte     // the sender's count of frames on this path: the node and the friend may reorder them
	To      [32]byte // the addressee's identity key
	From    [32]byte // the sender's identity key
	Session [FriendSessionSize]byte
	Payload []byte
}

// Encode is f's FriendPath body.
func (f FriendFrame) Encode() []byte {
	b := make([]byte, 0, FriendPathHeader+len(f.Payload))
	b = append(b, FriendPath, FriendPathVersion, f.Hop, f.Paths, f.Seq)
	b = append(b, f.To[:]...)
	b = append(b, f.From[:]...)
	b = append(b, f.Session[:]...)
	return append(b, f.Payload...)
}

// DecodeFriendFrame parses a FriendPath body.
func DecodeFriendFrame(b []byte) (FriendFrame, error) {
	var f FriendFrame
	if len(b) < FriendPathHeader || len(b) > FriendPathHeader+MaxFriendPayload {
		return f, fmt.Errorf("%w: friend frame of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != FriendPath || b[1] != FriendPathVersion {
		return f, fmt.Errorf("%w: type %d version %d", ErrMalformed, b[0], b[1])
	}
	f.Hop, f.Paths = b[2], b[3]
	if f.Hop > 1 || f.Paths < 1 || f.Paths > MaxFriendPaths {
		return f, fmt.Errorf("%w: hop %d, %d paths", ErrMalformed, f.Hop, f.Paths)
	}
	f.Seq = b[4]
	copy(f.To[:], b[5:37])
	copy(f.From[:], b[37:69])
	copy(f.Session[:], b[69:FriendPathHeader])
	f.Payload = append([]byte(nil), b[FriendPathHeader:]...)
	return f, nil
}

// LookupQuery and LookupAnswer bodies: fixed sizes.
const (
	LookupVersion   = 1
	LookupIDSize    = 16
	ContactHashSize = 32
	X25519Size      = 32
	// LookupSealedSize: an identity key (32 bytes) sealed with
	// ChaCha20-Poly1305 (16 bytes of tag).
	LookupSealedSize = 32 + 16
	// query: tag, version, query ID, contact hash, asker's one-time X25519 key
	LookupQuerySize = 2 + LookupIDSize + ContactHashSize + X25519Size
	// answer: tag, version, query ID, answerer's one-time X25519 key, sealed identity
	LookupAnswerHeader = 2 + LookupIDSize + X25519Size
	LookupAnswerSize   = LookupAnswerHeader + LookupSealedSize
)

// ContactQuery (tag LookupQuery) asks friends who knows the contact whose hash it carries.
type ContactQuery struct {
	ID   [LookupIDSize]byte
	Hash [ContactHashSize]byte
	Pub  [X25519Size]byte // the asker's one-time key
}

// Encode is q's LookupQuery body.
func (q ContactQuery) Encode() []byte {
	b := make([]byte, 0, LookupQuerySize)
	b = append(b, LookupQuery, LookupVersion)
	b = append(b, q.ID[:]...)
	b = append(b, q.Hash[:]...)
	return append(b, q.Pub[:]...)
}

// DecodeContactQuery parses a LookupQuery body.
func DecodeContactQuery(b []byte) (ContactQuery, error) {
	var q ContactQuery
	if len(b) != LookupQuerySize {
		return q, fmt.Errorf("%w: query of %d bytes, want %d", ErrMalformed, len(b), LookupQuerySize)
	}
	if b[0] != LookupQuery || b[1] != LookupVersion {
		return q, fmt.Errorf("%w: query type %d version %d", ErrMalformed, b[0], b[1])
	}
	o := 2
	o += copy(q.ID[:], b[o:])
	o += copy(q.Hash[:], b[o:])
	copy(q.Pub[:], b[o:])
	return q, nil
}

// ContactAnswer (tag LookupAnswer) answers a query with a sealed identity key.
type ContactAnswer struct {
	ID     [LookupIDSize]byte
	Pub    [X25519Size]byte // the answerer's one-time key
	Sealed []byte           // the contact's identity key, sealed
}

// Header is a's body without the sealed part: what the seal binds.
func (a ContactAnswer) Header() []byte {
	b := make([]byte, 0, LookupAnswerSize)
	b = append(b, LookupAnswer, LookupVersion)
	b = append(b, a.ID[:]...)
	return append(b, a.Pub[:]...)
}

// Encode is a's LookupAnswer body.
func (a ContactAnswer) Encode() []byte { return append(a.Header(), a.Sealed...) }

// DecodeContactAnswer parses a LookupAnswer body; the sealed part is
// opened by the reader.
func DecodeContactAnswer(b []byte) (ContactAnswer, error) {
	var a ContactAnswer
	if len(b) != LookupAnswerSize {
		return a, fmt.Errorf("%w: answer of %d bytes, want %d", ErrMalformed, len(b), LookupAnswerSize)
	}
	if b[0] != LookupAnswer || b[1] != LookupVersion {
		return a, fmt.Errorf("%w: answer type %d version %d", ErrMalformed, b[0], b[1])
	}
	o := 2
	o += copy(a.ID[:], b[o:])
	o += copy(a.Pub[:], b[o:])
	a.Sealed = append([]byte(nil), b[o:]...)
	return a, nil
}
