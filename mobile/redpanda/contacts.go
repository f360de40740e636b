package redpanda

import (
	"context"
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

// AddContact vouches that the person reachable at address (a phone
// number, national with defaultCC such as "49", or an e-mail address) is
// the one this identity shares the named channel with, so friends who
// look the address up learn their identity through this phone. identity
// "" means the one other person who wrote in the channel.
func (c *Client) AddContact(channelName, address, defaultCC, identity string) (*Contact, error) {
	var ct client.Contact
	err := c.local(CodeBadContact, func(sdk *client.Client) (err error) {
		ct, err = sdk.Contacts().Add(channelName, address, defaultCC, identity)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toContact(ct), nil
}

func toContact(ct client.Contact) *Contact {
	return &Contact{Address: ct.Address, Hash: ct.Hash, Identity: ct.Identity, Channel: ct.Channel, ChannelID: ct.ChannelID}
}

// Contacts lists the address book.
func (c *Client) Contacts() (*ContactList, error) {
	l := &ContactList{}
	err := c.local(CodeInternal, func(sdk *client.Client) error {
		cts, err := sdk.Contacts().List()
		for _, ct := range cts {
			l.items = append(l.items, toContact(ct))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// RemoveContact forgets the entry for address (or every entry of the
// channel named address) and returns how many it removed.
func (c *Client) RemoveContact(address, defaultCC string) (int, error) {
	var n int
	err := c.local(CodeBadContact, func(sdk *client.Client) (err error) {
		n, err = sdk.Contacts().Remove(address, defaultCC)
		return err
	})
	return n, err
}

// FindContact asks friends' phones who can reach the person at address
// (only a slow hash of it leaves the phone; a friend who does not know it
// stays silent) and collects answers for waitMs (<= 0: the SDK's
// default), or until every channel answered.
func (c *Client) FindContact(address, defaultCC string, waitMs int64, cancel *Cancel) (*LookupResult, error) {
	wait := client.DefaultLookupWait
	if waitMs > 0 {
		wait = msDuration(waitMs)
	}
	var r *client.LookupResult
	err := c.long(int64((wait+time.Minute)/time.Millisecond), 0, cancel, CodeInternal, syncsNow, func(ctx context.Context, sdk *client.Client) (err error) {
		r, err = sdk.Contacts().Find(ctx, address, defaultCC, nil, wait)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &LookupResult{Hash: r.Hash, Conflict: r.Conflict, r: r}, nil
}
