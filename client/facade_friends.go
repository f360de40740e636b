package client

import (
	"context"
)

// Friends is the agreement of a new channel with someone over paths
// through friends, one channel per friend (friendpath.go, multipath.go).
// Get one with Client.Friends.
type Friends struct{ c *Client }

// Friends is the agreement through friends (facade_friends.go).
func (c *Client) Friends() Friends { return Friends{c} }

// Paths builds one Relay per named channel (each shared with a
// different friend) toward identity peer, all in one new session; call
// the returned close function when the agreement is over.
func (f Friends) Paths(peer string, via []string) ([]Relay, func(), error) {
	return f.c.friendPaths(peer, via)
}

// Agree is the initiator's side: it agrees with peer over the
// named channels, one per friend, and joins the new channel as name.
func (f Friends) Agree(ctx context.Context, name, peer string, via []string) (*Agreement, error) {
	return f.c.agreeViaFriends(ctx, name, peer, via)
}

// Accept is the responder's side: it waits for an agreement
// that peer starts through friends (Friends.AcceptPaths) and joins the new
// channel as name.
func (f Friends) Accept(ctx context.Context, name, peer string) (*Agreement, error) {
	return f.c.acceptViaFriends(ctx, name, peer)
}

// AcceptPaths waits until peer starts a session through friends
// and returns its paths: all the sender announced, or those that arrived
// within a grace period after the first. Call the close function when the
// agreement is over.
func (f Friends) AcceptPaths(ctx context.Context, peer string) ([]Relay, func(), error) {
	return f.c.acceptFriendPaths(ctx, peer)
}

// AgreeOver runs AgreeMultiPath and joins the resulting channel
// under name ("" names it after the channel ID).
func (f Friends) AgreeOver(ctx context.Context, name string, role Role, relays []Relay) (*Agreement, error) {
	return f.c.agreeThroughFriends(ctx, name, role, relays)
}
