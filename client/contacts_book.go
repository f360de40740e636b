package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// The address book: the contact hashes this client vouches for. A user
// adds a contact by naming the channel they share with that person and
// the person's phone number or e-mail address; the client keeps the hash
// with the channel and the person's identity, and answers a friend's
// lookup for that hash (lookup.go). Nothing is published: a friend learns
// that this client knows a hash only by asking for it.

// bucketContacts: contact hash (32 bytes) -> contactRecord (JSON).
const bucketContacts = "contacts"

// Errors of the address book.
var (
	// ErrNoContact: no address-book entry for that address or name.
	ErrNoContact = errors.New("client: no such contact")
	// ErrContactIdentity: the contact's identity cannot be told from the
	// channel (nobody else wrote there, several people did, or the one
	// named did not).
	ErrContactIdentity = errors.New("client: cannot tell the contact's identity from the channel")
)

// Contact is one address-book entry.
type Contact struct {
	Address   string // normalised phone number (E.164) or e-mail address; stays on this device
	Hash      string // ContactHash of Address, hex: what friends ask for
	Identity  string // the contact's identity ("rpi…")
	Channel   string // local name of the channel shared with the contact
	ChannelID string // that channel's ID, hex
}

type contactRecord struct {
	Address   string `json:"addr"`
	Identity  string `json:"id"`
	ChannelID string `json:"ch"`
}

// NormalizeAddress normalises a phone number (NormalizePhone, with
// defaultCC for national numbers) or, if it has an "@", an e-mail address.
func NormalizeAddress(addr, defaultCC string) (string, error) {
	if strings.Contains(addr, "@") {
		return NormalizeEmail(addr)
	}
	return NormalizePhone(addr, defaultCC)
}

// addContact implements Contacts.Add.
func (c *Client) addContact(name, address, defaultCC, identity string) (Contact, error) {
	norm, err := NormalizeAddress(address, defaultCC)
	if err != nil {
		return Contact{}, fmt.Errorf("client.Contacts.Add: %w", err)
	}
	cs, err := c.byName(name)
	if err != nil {
		return Contact{}, fmt.Errorf("client.Contacts.Add: %w", err)
	}
	authors, err := c.channelAuthors(cs)
	if err != nil {
		return Contact{}, fmt.Errorf("client.Contacts.Add: %w", err)
	}
	delete(authors, c.ID())
	if identity == "" {
		if len(authors) != 1 {
			return Contact{}, fmt.Errorf("client.Contacts.Add: %w: %d other people wrote in %q; name the contact's identity", ErrContactIdentity, len(authors), name)
		}
		for id := range authors {
			identity = id
		}
	} else {
		id, err := channel.ParseIdentityKey(identity)
		if err != nil {
			return Contact{}, fmt.Errorf("client.Contacts.Add: %w", err)
		}
		identity = id.String()
		if !authors[identity] {
			return Contact{}, fmt.Errorf("client.Contacts.Add: %w: %s has not written in %q yet", ErrContactIdentity, identity, name)
		}
	}
	hash := ContactHash(norm)
	rec, _ := json.Marshal(contactRecord{Address: norm, Identity: identity, ChannelID: cs.key.ID().String()})
	if err := c.db.Meta(bucketContacts).Put(hash, rec); err != nil {
		return Contact{}, fmt.Errorf("client.Contacts.Add: %w", err)
	}
	return Contact{Address: norm, Hash: hex.EncodeToString(hash), Identity: identity, Channel: cs.name, ChannelID: cs.key.ID().String()}, nil
}

// contacts implements Contacts.List.
func (c *Client) contacts() ([]Contact, error) {
	var out []Contact
	err := c.db.Meta(bucketContacts).ForEach(func(k, v []byte) error {
		var r contactRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("contact record %x: %w", k, err)
		}
		ct := Contact{Address: r.Address, Hash: hex.EncodeToString(k), Identity: r.Identity, ChannelID: r.ChannelID}
		if cs := c.channelByIDHex(r.ChannelID); cs != nil {
			ct.Channel = cs.name
		}
		out = append(out, ct)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client.Contacts.List: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// removeContact implements Contacts.Remove.
func (c *Client) removeContact(address, defaultCC string) (int, error) {
	all, err := c.contacts()
	if err != nil {
		return 0, err
	}
	norm, _ := NormalizeAddress(address, defaultCC)
	var drop []Contact
	for _, ct := range all {
		if (norm != "" && ct.Address == norm) || ct.Channel == address {
			drop = append(drop, ct)
		}
	}
	if len(drop) == 0 {
		return 0, fmt.Errorf("client.Contacts.Remove: %w: %q", ErrNoContact, address)
	}
	for _, ct := range drop {
		h, _ := hex.DecodeString(ct.Hash)
		if err := c.db.Meta(bucketContacts).Delete(h); err != nil {
			return 0, fmt.Errorf("client.Contacts.Remove: %w", err)
		}
	}
	return len(drop), nil
}

// vouchedContact returns the entry for hash if this client vouches for
// it now: the entry exists and its channel is still joined.
func (c *Client) vouchedContact(hash []byte) (contactRecord, *chanState, bool) {
	v, err := c.db.Meta(bucketContacts).Get(hash)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			c.log.Warn("contacts: read", "err", err)
		}
		return contactRecord{}, nil, false
	}
	var r contactRecord
	if err := json.Unmarshal(v, &r); err != nil {
		c.log.Warn("contacts: bad record", "err", err)
		return contactRecord{}, nil, false
	}
	cs := c.channelByIDHex(r.ChannelID)
	return r, cs, cs != nil
}

func (c *Client) channelByIDHex(s string) *chanState {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cs := range c.chans {
		if id.String() == s {
			return cs
		}
	}
	return nil
}

// channelAuthors returns the identities that wrote text in the channel.
func (c *Client) channelAuthors(cs *chanState) (map[string]bool, error) {
	out := map[string]bool{}
	err := c.db.Meta(historyPrefix + cs.key.ID().String()).ForEach(func(_, v []byte) error {
		var r historyRecord
		if json.Unmarshal(v, &r) == nil && r.Author != "" {
			out[r.Author] = true
		}
		return nil
	})
	return out, err
}
