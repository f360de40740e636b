package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// The registry's records (Records): one key a registration, a revocation
// or a pending notice, each a prefix and the 32-byte identity, and the JSON
// that each holds. Reading them back is load; the decisions live in
// policy.go, the protocol in handlers.go.

// Record keys: a prefix and the 32-byte identity.
var (
	keyReg     = []byte("reg/")
	keyRevoked = []byte("rev/")
	keyNotice  = []byte("note/")
)

func recKey(prefix []byte, id channel.IdentityKey) []byte {
	return append(append([]byte(nil), prefix...), id[:]...)
}

type storedReg struct {
	V        int      `json:"v"`
	Peer     string   `json:"peer"`
	Hop      int      `json:"hop"`
	Channels [][]byte `json:"channels"`
	Since    int64    `json:"since"`
	Expires  int64    `json:"expires"`
	Path     [][]byte `json:"path"`
	Root     []byte   `json:"root"`
	Last     int64    `json:"last"`
	Others   []string `json:"others,omitempty"`
}

type storedNotice struct {
	Status int32  `json:"status"`
	Detail string `json:"detail"`
	At     int64  `json:"at"`
}

func (r *Registry) load() error {
	var bad [][]byte
	err := r.recs.ForEach(func(k, v []byte) error {
		var id channel.IdentityKey
		switch {
		case len(k) == len(keyReg)+len(id) && bytes.HasPrefix(k, keyReg):
			copy(id[:], k[len(keyReg):])
			e, err := decodeStoredReg(id, v)
			if err != nil {
				r.log.Warn("dropping unreadable registration record", "identity", id, "err", err)
				bad = append(bad, k)
				return nil
			}
			r.setEntryLocked(e)
		case len(k) == len(keyRevoked)+len(id) && bytes.HasPrefix(k, keyRevoked):
			copy(id[:], k[len(keyRevoked):])
			r.revoked[id] = true
		case len(k) == len(keyNotice)+len(id) && bytes.HasPrefix(k, keyNotice):
			copy(id[:], k[len(keyNotice):])
			pn, err := decodeStoredNotice(v)
			if err != nil {
				bad = append(bad, k)
				return nil
			}
			r.pending[id] = pn
		default:
			r.log.Warn("ignoring unknown record", "key", fmt.Sprintf("%x", k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading registrations: %w", err)
	}
	for _, k := range bad {
		if err := r.recs.Delete(k); err != nil {
			return fmt.Errorf("dropping a bad record: %w", err)
		}
	}
	return nil
}

func decodeStoredReg(id channel.IdentityKey, v []byte) (*entry, error) {
	var s storedReg
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	if s.V != 1 {
		return nil, fmt.Errorf("record version %d", s.V)
	}
	p, err := peer.Decode(s.Peer)
	if err != nil {
		return nil, err
	}
	e := &entry{Registration: Registration{Identity: id, Peer: p, Hop: s.Hop,
		Since: time.UnixMilli(s.Since), Expires: time.UnixMilli(s.Expires)}, last: time.UnixMilli(s.Last)}
	for _, c := range s.Channels {
		var ch channel.ID
		if len(c) != len(ch) {
			return nil, fmt.Errorf("channel of %d bytes", len(c))
		}
		copy(ch[:], c)
		e.Channels = append(e.Channels, ch)
	}
	for _, k := range s.Path {
		var key channel.IdentityKey
		if len(k) != len(key) {
			return nil, fmt.Errorf("sponsor of %d bytes", len(k))
		}
		copy(key[:], k)
		e.path = append(e.path, key)
	}
	if len(s.Root) == len(e.root) {
		copy(e.root[:], s.Root)
	}
	if n := len(e.path); n > 0 {
		e.SponsoredBy = e.path[n-1]
	}
	for _, o := range s.Others {
		op, err := peer.Decode(o)
		if err != nil {
			return nil, err
		}
		e.others = append(e.others, op)
	}
	return e, nil
}

func (r *Registry) putReg(e *entry) error {
	v, err := encodeStoredReg(e)
	if err != nil {
		return err
	}
	return r.recs.Put(recKey(keyReg, e.Identity), v)
}

// encodeStoredReg is the record of e that decodeStoredReg reads.
func encodeStoredReg(e *entry) ([]byte, error) {
	s := storedReg{V: 1, Peer: e.Peer.String(), Hop: e.Hop, Since: e.Since.UnixMilli(),
		Expires: e.Expires.UnixMilli(), Last: e.last.UnixMilli()}
	for _, c := range e.Channels {
		s.Channels = append(s.Channels, bytes.Clone(c[:]))
	}
	for _, k := range e.path {
		s.Path = append(s.Path, bytes.Clone(k[:]))
	}
	for _, o := range e.others {
		s.Others = append(s.Others, o.String())
	}
	if e.root != (channel.IdentityKey{}) {
		s.Root = bytes.Clone(e.root[:])
	}
	return json.Marshal(s)
}

// encodeStoredNotice is the record of a pending notice.
func encodeStoredNotice(pn pendingNotice) []byte {
	v, _ := json.Marshal(storedNotice{Status: int32(pn.Status), Detail: pn.Detail, At: pn.At.UnixMilli()})
	return v
}

// decodeStoredNotice reads what encodeStoredNotice wrote.
func decodeStoredNotice(v []byte) (pendingNotice, error) {
	var n storedNotice
	if err := json.Unmarshal(v, &n); err != nil {
		return pendingNotice{}, err
	}
	return pendingNotice{Status: Status(n.Status), Detail: n.Detail, At: time.UnixMilli(n.At)}, nil
}
