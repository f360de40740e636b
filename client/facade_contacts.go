package client

import (
	"context"
	"time"
)

// Contacts is the address book and the contact lookup through friends
// (docs/CONTACTS.md). Get one with Client.Contacts.
type Contacts struct{ c *Client }

// Contacts is the client's address book and contact lookup
// (facade_contacts.go).
func (c *Client) Contacts() Contacts { return Contacts{c} }

// Add records that the person reachable at address (a phone
// number or e-mail address; defaultCC is the country calling code for
// national numbers) is the one this client shares the named channel with,
// so that friends who look the address up learn their identity through
// this client. identity "" means the one other person who wrote in the
// channel; with several, name it. Either way that identity must have
// written in the channel: a friend path forwards only to a channel whose
// history shows the addressee as an author. Adding the same address again
// replaces the entry.
func (ct Contacts) Add(name, address, defaultCC, identity string) (Contact, error) {
	return ct.c.addContact(name, address, defaultCC, identity)
}

// List lists the address book, by address. An entry whose channel was
// left shows an empty Channel (it is not vouched for any more).
func (ct Contacts) List() ([]Contact, error) {
	return ct.c.contacts()
}

// Remove forgets the entry for address (or, failing that, every
// entry of the channel named address).
func (ct Contacts) Remove(address, defaultCC string) (int, error) {
	return ct.c.removeContact(address, defaultCC)
}

// Find asks friends who can reach the person at address (a phone
// number or e-mail address; defaultCC for national numbers). It hashes
// the address here, posts one query into each channel named in via
// (none: every channel this client can read and write, except its own
// master, node and dust channels) and collects answers for wait
// (DefaultLookupWait if zero), or until every channel answered.
func (ct Contacts) Find(ctx context.Context, address, defaultCC string, via []string, wait time.Duration) (*LookupResult, error) {
	return ct.c.findContact(ctx, address, defaultCC, via, wait)
}

// FindHash is Contacts.Find with the hash already computed.
func (ct Contacts) FindHash(ctx context.Context, hash []byte, via []string, wait time.Duration) (*LookupResult, error) {
	return ct.c.findContactHash(ctx, hash, via, wait)
}
