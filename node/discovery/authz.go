package discovery

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// AuthzProtocol is the stream protocol on which two super nodes show each
// other their serving statements. The opener writes one frame with its
// statements for the channels it wants to sync with the other side and
// closes its write side; the other side verifies them and answers with
// one frame holding its own statements for those of the verified channels
// it serves. So a node reveals that it serves a channel only to a peer
// that proved it serves it too.
const AuthzProtocol = protocol.ID("/redpanda/authz/1.0.0")

// MaxStatementsPerFrame bounds the statements in one authz frame.
const MaxStatementsPerFrame = 64

// maxFrame is the largest authz frame body.
const maxFrame = MaxStatementsPerFrame * (1 + MaxStatementSize)

// encodeFrame returns a frame: body length (2 bytes, big endian), then per
// statement its length (1 byte) and encoding.
func encodeFrame(sts []*Statement) ([]byte, error) {
	if len(sts) > MaxStatementsPerFrame {
		return nil, fmt.Errorf("%w: %d statements in one frame, max %d", ErrMalformed, len(sts), MaxStatementsPerFrame)
	}
	b := make([]byte, 2, 2+len(sts)*(1+MaxStatementSize))
	for _, st := range sts {
		enc, err := st.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = append(b, byte(len(enc)))
		b = append(b, enc...)
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b, nil
}

// readFrame reads one frame from r and decodes its statements. It reads
// at most the 2-byte header plus maxFrame bytes.
func readFrame(r io.Reader) ([]*Statement, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("authz frame header: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > maxFrame {
		return nil, fmt.Errorf("%w: authz frame of %d bytes, max %d", ErrMalformed, n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("authz frame body: %w", err)
	}
	return decodeFrameBody(body)
}

// decodeFrameBody decodes the statements of a frame body. Any malformed
// statement fails the whole frame: a peer that sends garbage is not
// worth a partial answer.
func decodeFrameBody(body []byte) ([]*Statement, error) {
	var out []*Statement
	for len(body) > 0 {
		if len(out) == MaxStatementsPerFrame {
			return nil, fmt.Errorf("%w: more than %d statements in a frame", ErrMalformed, MaxStatementsPerFrame)
		}
		n := int(body[0])
		body = body[1:]
		if n > len(body) {
			return nil, fmt.Errorf("%w: statement %d claims %d bytes, %d left", ErrMalformed, len(out), n, len(body))
		}
		st, err := UnmarshalStatement(body[:n])
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", len(out), err)
		}
		out = append(out, st)
		body = body[n:]
	}
	return out, nil
}
