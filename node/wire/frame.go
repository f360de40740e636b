package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// MaxFrameSize is the default hard cap on one frame's protobuf bytes: room
// for the largest envelope in a Body or Push, and for a full Reconcile round.
const MaxFrameSize = 1 << 20

// Limits on repeated fields, checked by DecodeFrame so a peer cannot make
// the receiver loop over more than a frame's worth of work.
const (
	MaxIDsPerFrame     = 4096 // Fetch, NotFound, IDList, Want
	MaxRangesPerFrame  = 1024 // Reconcile
	MaxHeadersPerFrame = 4096 // Announce
)

// Sentinel errors callers branch on.
var (
	// ErrFrameTooLarge: the length prefix exceeds the cap. Nothing past the
	// prefix was read or allocated.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformedFrame: the bytes are not a valid frame.
	ErrMalformedFrame = errors.New("wire: malformed frame")
)

// ReadFrame reads one unsigned-varint length prefix and that many bytes. It
// checks the length against max before allocating. A clean end of stream
// before the first byte returns io.EOF; a stream ending mid-frame returns
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	return readFrame(r, max, nil)
}

// readFrame is ReadFrame reading into buf's capacity when the frame fits.
func readFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, max)
	}
	var b []byte
	if n <= uint64(cap(buf)) {
		b = buf[:n]
	} else {
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wire: reading %d-byte frame: %w", n, err)
	}
	return b, nil
}

// readUvarint reads a varint byte by byte so it never consumes bytes past
// the prefix, whatever the reader.
func readUvarint(r io.Reader) (uint64, error) {
	var x uint64
	var s uint
	var one [1]byte
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("wire: reading length prefix: %w", io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		c := one[0]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: length prefix is not minimally encoded", ErrMalformedFrame)
			}
			return x | uint64(c)<<s, nil
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, fmt.Errorf("%w: length prefix overflows 64 bits", ErrMalformedFrame)
}

// WriteFrame writes b with its unsigned-varint length prefix in one Write.
func WriteFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(b))
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	buf = append(buf, b...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wire: writing frame: %w", err)
	}
	return nil
}

// WriteMsg marshals m and writes it as one frame.
func WriteMsg(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("wire: marshal %T: %w", m, err)
	}
	return WriteFrame(w, b)
}

// ReadSyncFrame reads and decodes one sync Frame of at most max bytes.
// The frame's bytes are read into a pooled buffer: decoding copies every
// field out of them, so a buffer per frame was garbage at once.
func ReadSyncFrame(r io.Reader, max int) (*wirepb.Frame, int, error) {
	bp := frameBufs.Get().(*[]byte)
	defer putFrameBuf(bp)
	b, err := readFrame(r, max, *bp)
	if err != nil {
		return nil, 0, err
	}
	*bp = b[:0]
	f, err := DecodeFrame(b)
	return f, len(b), err
}

// maxPooledFrame is the largest buffer kept for reuse: a frame larger
// than a few envelopes is rare, and a pool of 1 MiB buffers is not.
const maxPooledFrame = 64 << 10

var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putFrameBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledFrame {
		frameBufs.Put(bp)
	}
}

// DecodeFrame unmarshals a sync Frame and checks its structure: a known
// kind, fixed-size IDs and keys, list lengths within the limits, ranges
// that are not empty. It does not check signatures or timestamps.
func DecodeFrame(b []byte) (*wirepb.Frame, error) {
	f := new(wirepb.Frame)
	if err := proto.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if err := CheckFrame(f); err != nil {
		return nil, err
	}
	return f, nil
}

// CheckFrame is DecodeFrame's structural check, for frames built in memory.
func CheckFrame(f *wirepb.Frame) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformedFrame}, a...)...)
	}
	switch k := f.GetKind().(type) {
	case nil:
		return bad("no frame kind (unknown or empty frame)")
	case *wirepb.Frame_Hello:
		if err := checkIDs("hello.want", k.Hello.GetWant(), channel.IDSize); err != nil {
			return err
		}
	case *wirepb.Frame_Want:
		if err := checkIDs("want.add", k.Want.GetAdd(), channel.IDSize); err != nil {
			return err
		}
		if err := checkIDs("want.remove", k.Want.GetRemove(), channel.IDSize); err != nil {
			return err
		}
	case *wirepb.Frame_Announce:
		hs := k.Announce.GetHeaders()
		if len(hs) == 0 || len(hs) > MaxHeadersPerFrame {
			return bad("announce has %d headers, want 1..%d", len(hs), MaxHeadersPerFrame)
		}
		for i, h := range hs {
			if _, err := HeaderFromPB(h); err != nil {
				return fmt.Errorf("announce header %d: %w", i, err)
			}
		}
	case *wirepb.Frame_Fetch:
		if len(k.Fetch.GetIds()) == 0 {
			return bad("fetch of no IDs")
		}
		if err := checkIDs("fetch.ids", k.Fetch.GetIds(), sha256Size); err != nil {
			return err
		}
	case *wirepb.Frame_NotFound:
		if err := checkIDs("not_found.ids", k.NotFound.GetIds(), sha256Size); err != nil {
			return err
		}
	case *wirepb.Frame_Body:
		if k.Body.GetEnvelope() == nil {
			return bad("body without envelope")
		}
	case *wirepb.Frame_Push:
		if k.Push.GetEnvelope() == nil {
			return bad("push without envelope")
		}
	case *wirepb.Frame_Ack:
		if len(k.Ack.GetId()) != sha256Size {
			return bad("ack id is %d bytes, want %d", len(k.Ack.GetId()), sha256Size)
		}
	case *wirepb.Frame_Reject:
		if id := k.Reject.GetId(); len(id) != 0 && len(id) != sha256Size {
			return bad("reject id is %d bytes, want 0 or %d", len(id), sha256Size)
		}
	case *wirepb.Frame_Reconcile:
		rc := k.Reconcile
		if len(rc.GetChannel()) != channel.IDSize {
			return bad("reconcile channel is %d bytes, want %d", len(rc.GetChannel()), channel.IDSize)
		}
		if len(rc.GetRanges()) > MaxRangesPerFrame {
			return bad("reconcile has %d ranges, cap %d", len(rc.GetRanges()), MaxRangesPerFrame)
		}
		for i, r := range rc.GetRanges() {
			if r.GetFromMs() >= r.GetToMs() {
				return bad("range %d is empty: [%d, %d)", i, r.GetFromMs(), r.GetToMs())
			}
			switch m := r.GetMode().(type) {
			case *wirepb.Range_Fingerprint:
				if len(m.Fingerprint.GetXor()) != sha256Size {
					return bad("range %d fingerprint is %d bytes, want %d", i, len(m.Fingerprint.GetXor()), sha256Size)
				}
			case *wirepb.Range_Ids:
				if err := checkIDs(fmt.Sprintf("range %d ids", i), m.Ids.GetIds(), sha256Size); err != nil {
					return err
				}
			default:
				return bad("range %d has no mode", i)
			}
		}
	}
	return nil
}

const sha256Size = len(channel.MessageID{})

func checkIDs(what string, ids [][]byte, size int) error {
	if len(ids) > MaxIDsPerFrame {
		return fmt.Errorf("%w: %s has %d entries, cap %d", ErrMalformedFrame, what, len(ids), MaxIDsPerFrame)
	}
	for i, id := range ids {
		if len(id) != size {
			return fmt.Errorf("%w: %s[%d] is %d bytes, want %d", ErrMalformedFrame, what, i, len(id), size)
		}
	}
	return nil
}
