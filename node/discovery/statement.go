package discovery

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mr-tron/base58"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// statementDomain separates statement signatures from every other use of
// the write key (envelopes sign under "redpanda/v2/envelope\x00").
const statementDomain = "redpanda/v2/serve\x00"

// statementVersion is the first byte of an encoded statement.
const statementVersion = 1

// maxPeerIDLen bounds the encoded peer ID (an Ed25519 identity multihash
// is 38 bytes; RSA keys are hashed to 34).
const maxPeerIDLen = 64

// MaxStatementSize is the largest encoded statement.
const MaxStatementSize = 1 + channel.IDSize + 8 + 1 + maxPeerIDLen + ed25519.SignatureSize

// Statement says "node Node may serve channel Channel until Until", signed
// by the channel's write key. Members' clients issue it to the super nodes
// they register at; a node shows it to the peers it syncs the channel with.
type Statement struct {
	Channel   channel.ID
	Node      peer.ID
	Until     time.Time // whole seconds, UTC
	Signature [ed25519.SignatureSize]byte
}

// signed is what the write key signs: the domain, then the encoding
// without the signature.
func (s *Statement) signed() []byte {
	b := []byte(statementDomain)
	return s.appendBody(b)
}

func (s *Statement) appendBody(b []byte) []byte {
	b = append(b, statementVersion)
	b = append(b, s.Channel[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Until.Unix()))
	b = append(b, byte(len(s.Node)))
	return append(b, s.Node...)
}

// MarshalBinary encodes the statement: version (1) || channel ID (32) ||
// until, Unix seconds (8, big endian) || peer ID length (1) || peer ID ||
// Ed25519 signature (64).
func (s *Statement) MarshalBinary() ([]byte, error) {
	if len(s.Node) == 0 || len(s.Node) > maxPeerIDLen {
		return nil, fmt.Errorf("%w: statement peer ID of %d bytes", ErrMalformed, len(s.Node))
	}
	b := s.appendBody(make([]byte, 0, MaxStatementSize))
	return append(b, s.Signature[:]...), nil
}

// UnmarshalStatement decodes what MarshalBinary produced. It checks the
// structure only; VerifyStatement checks what it says.
func UnmarshalStatement(b []byte) (*Statement, error) {
	const fixed = 1 + channel.IDSize + 8 + 1
	if len(b) < fixed+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: statement of %d bytes is too short", ErrMalformed, len(b))
	}
	if b[0] != statementVersion {
		return nil, fmt.Errorf("%w: statement version %d, want %d", ErrMalformed, b[0], statementVersion)
	}
	n := int(b[fixed-1])
	if n == 0 || n > maxPeerIDLen {
		return nil, fmt.Errorf("%w: statement peer ID length %d", ErrMalformed, n)
	}
	if len(b) != fixed+n+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: statement of %d bytes, want %d", ErrMalformed, len(b), fixed+n+ed25519.SignatureSize)
	}
	s := &Statement{}
	copy(s.Channel[:], b[1:])
	until := binary.BigEndian.Uint64(b[1+channel.IDSize:])
	if until > 1<<62 {
		return nil, fmt.Errorf("%w: statement time out of range", ErrMalformed)
	}
	s.Until = time.Unix(int64(until), 0).UTC()
	id, err := peer.IDFromBytes(b[fixed : fixed+n])
	if err != nil {
		return nil, fmt.Errorf("%w: statement peer ID: %v", ErrMalformed, err)
	}
	s.Node = id
	copy(s.Signature[:], b[fixed+n:])
	return s, nil
}

// IssueStatement signs, with the channel's write key, that node may serve
// the channel until the given time (truncated to whole seconds). The key
// must hold the write key (full or write-only capability).
func IssueStatement(key *channel.Key, node peer.ID, until time.Time) (*Statement, error) {
	priv, err := writeKey(key)
	if err != nil {
		return nil, fmt.Errorf("discovery.IssueStatement: %w", err)
	}
	if len(node) == 0 || len(node) > maxPeerIDLen {
		return nil, fmt.Errorf("discovery.IssueStatement: %w: peer ID of %d bytes", ErrMalformed, len(node))
	}
	s := &Statement{Channel: key.ID(), Node: node, Until: time.Unix(until.Unix(), 0).UTC()}
	copy(s.Signature[:], ed25519.Sign(priv, s.signed()))
	return s, nil
}

// VerifyStatement checks that s lets node serve channel ch at time now:
// the right channel, the right node, not expired, and signed by the
// channel's write key (the channel ID). Each failure wraps its sentinel.
func VerifyStatement(s *Statement, ch channel.ID, node peer.ID, now time.Time) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: no statement", ErrNotAuthorized)
	case s.Channel != ch:
		return fmt.Errorf("%w: statement names %s, want %s", ErrWrongChannel, short(s.Channel), short(ch))
	case s.Node != node:
		return fmt.Errorf("%w: statement names %s, shown by %s", ErrWrongPeer, s.Node.ShortString(), node.ShortString())
	case len(s.Node) > maxPeerIDLen:
		return fmt.Errorf("%w: statement peer ID too long", ErrMalformed)
	}
	if !ch.VerifySignature(s.signed(), s.Signature[:]) {
		return fmt.Errorf("%w: channel %s, node %s", ErrBadSignature, short(ch), node.ShortString())
	}
	// The signature is checked first so that a forged statement is called
	// forged even when its time has also passed.
	if !now.Before(s.Until) {
		return fmt.Errorf("%w: at %s (now %s)", ErrExpired, s.Until.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func short(ch channel.ID) string { return ch.String()[:12] }

// writeKey recovers the Ed25519 write key of a full or write-only channel
// key. package channel keeps the key unexported; its write-only key string
// is documented as "rpw" + Base58(write seed (32) || sealing public key
// (32) || checksum (4)), so that is what is read here, and the result is
// checked against the channel ID so a format change fails loudly instead
// of signing with a wrong key.
func writeKey(key *channel.Key) (ed25519.PrivateKey, error) {
	if key == nil || !key.CanWrite() {
		return nil, ErrCannotSign
	}
	wo, err := key.WriteOnly()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCannotSign, err)
	}
	s := wo.String()
	if !strings.HasPrefix(s, channel.PrefixWrite) {
		return nil, fmt.Errorf("%w: unexpected write-only key string", ErrCannotSign)
	}
	raw, err := base58.Decode(strings.TrimPrefix(s, channel.PrefixWrite))
	if err != nil || len(raw) < ed25519.SeedSize {
		return nil, fmt.Errorf("%w: cannot read write-only key string", ErrCannotSign)
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	id := key.ID()
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), id[:]) {
		return nil, fmt.Errorf("%w: write key does not match the channel ID", ErrCannotSign)
	}
	return priv, nil
}
