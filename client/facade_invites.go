package client

// Invites is the invitation exchange that makes a new channel between two
// people (invite.go). Get one with Client.Invites.
type Invites struct{ c *Client }

// Invites is the client's invitations (facade_invites.go).
func (c *Client) Invites() Invites { return Invites{c} }

// Create makes an invitation string and keeps its private half in the
// home until the answer comes back (Invites.Complete).
func (i Invites) Create() (string, error) {
	return i.c.invite()
}

// Accept answers an invitation: it joins the new channel under name
// ("" names it after the channel ID) and returns the answer to send back.
func (i Invites) Accept(name, invitation string) (*Agreement, error) {
	return i.c.acceptInvite(name, invitation)
}

// Complete finishes an invitation this client made, with the answer
// that came back: it joins the new channel under name and forgets the
// pending invitation.
func (i Invites) Complete(name, answer string) (*Agreement, error) {
	return i.c.completeInvite(name, answer)
}

// Pending is how many invitations wait for an answer. Expired
// ones are deleted on the way.
func (i Invites) Pending() (int, error) {
	return i.c.pendingInvites()
}
