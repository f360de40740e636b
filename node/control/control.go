package control

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The tags: the first byte of a control body. The wire format is fixed;
// a new kind of control message takes a new tag here.
const (
	// Adverts: the super nodes a member can reach (routing.EncodeAdverts
	// follows), posted by clients in their channels.
	Adverts byte = 1
	// Device: a device-layer message in the identity's master channel
	// (JSON follows: device joins and leaves, versioned state).
	Device byte = 'D'
	// Serve: the list of channels the identity's home node should serve,
	// in the node channel (JSON follows: ServeList).
	Serve byte = 'S'
	// NodeReport: a report of the home node to its owner in the master
	// channel (node/report's JSON follows).
	NodeReport byte = 'N'
	// FriendPath: a frame relayed through a friend for multipath key
	// agreement (binary header and payload follow).
	FriendPath byte = 'F'
	// LookupQuery and LookupAnswer: a contact lookup among friends
	// (binary, fixed sizes).
	LookupQuery  byte = 'Q'
	LookupAnswer byte = 'A'
)

var names = map[byte]string{
	Adverts:      "adverts",
	Device:       "device",
	Serve:        "serve",
	NodeReport:   "node-report",
	FriendPath:   "friend-path",
	LookupQuery:  "lookup-query",
	LookupAnswer: "lookup-answer",
}

// Name is a tag's name for logs; "" for a tag not defined here.
func Name(tag byte) string { return names[tag] }

// ErrMalformed: a control body that does not parse as its tag says.
var ErrMalformed = errors.New("control: malformed body")

// Table maps tags to one reader's handlers; M is what a handler is given
// (the message and the reader's context for it). The zero Table handles
// nothing.
type Table[M any] struct {
	h [256]func(M)
}

// On registers f for tag. A tag has one handler per table, and only the
// tags defined in this package can have one: either mistake is a
// programming error and panics.
func (t *Table[M]) On(tag byte, f func(M)) {
	if names[tag] == "" {
		panic(fmt.Sprintf("control: tag %#x is not defined", tag))
	}
	if t.h[tag] != nil {
		panic(fmt.Sprintf("control: tag %q registered twice", names[tag]))
	}
	t.h[tag] = f
}

// Dispatch calls the handler registered for body's tag with m, and says
// whether there was one (an empty body has none).
func (t *Table[M]) Dispatch(body []byte, m M) bool {
	if len(body) == 0 || t.h[body[0]] == nil {
		return false
	}
	t.h[body[0]](m)
	return true
}

// Limits of a serve list.
const (
	MaxServeList    = 64 * 1024 // bytes of a Serve body
	MaxServeListIDs = 4096      // channel IDs in each of its lists
)

// ServeList is what the node channel carries: every channel ID the
// identity's node should serve. Whole lists, so the newest one is the
// truth and a lost message loses nothing.
type ServeList struct {
	// Channels are hex channel IDs.
	Channels []string `json:"channels"`
	// Control names the channels of Channels that carry no person's
	// words (the master channel, dust), so the node counts them apart.
	Control []string `json:"control,omitempty"`
	// At is when the list was made (Unix milliseconds): an older list
	// never replaces a newer one.
	At int64 `json:"at"`
}

// EncodeServeList is the Serve body of l: the tag, then JSON.
func EncodeServeList(l ServeList) []byte {
	b, _ := json.Marshal(l) // strings and an integer: cannot fail
	return append([]byte{Serve}, b...)
}

// DecodeServeList parses a Serve body. The IDs are not parsed here: the
// reader does, and decides what a bad one costs.
func DecodeServeList(b []byte) (ServeList, error) {
	var l ServeList
	if len(b) < 2 || b[0] != Serve || len(b) > MaxServeList {
		return l, fmt.Errorf("%w: not a serve list (%d bytes)", ErrMalformed, len(b))
	}
	if err := json.Unmarshal(b[1:], &l); err != nil {
		return ServeList{}, fmt.Errorf("%w: serve list: %v", ErrMalformed, err)
	}
	if len(l.Channels) > MaxServeListIDs || len(l.Control) > MaxServeListIDs {
		return ServeList{}, fmt.Errorf("%w: serve list of %d channels, %d control, limit %d",
			ErrMalformed, len(l.Channels), len(l.Control), MaxServeListIDs)
	}
	return l, nil
}

// Tags returns the tags that have a handler, in byte order.
func (t *Table[M]) Tags() []byte {
	var out []byte
	for tag, f := range t.h {
		if f != nil {
			out = append(out, byte(tag))
		}
	}
	return out
}
