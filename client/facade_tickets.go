package client

// Tickets is the hop tickets: chains friends issued to this client and
// those it issues to them (routing.go). Get one with Client.Tickets.
type Tickets struct{ c *Client }

// Tickets is the client's hop tickets (facade_tickets.go).
func (c *Client) Tickets() Tickets { return Tickets{c} }

// Set stores a chain a friend issued to this client (what
// `redpanda ticket issue` printed for it), replacing any chain to the same
// owner. The chain must be valid now and name this client. The nodes the
// chain's hint names become nodes this client registers at, and are
// introduced to its own home nodes.
func (t Tickets) Set(chainString string) (Ticket, error) {
	return t.c.setTicket(chainString)
}

// List lists the chains this client holds, lowest hop first.
func (t Tickets) List() ([]Ticket, error) {
	return t.c.tickets()
}

// Issue signs a ticket for a friend's identity ("rpi…") valid for
// days (<= 0: DefaultTicketDays) and returns the chain string the friend
// sets with Tickets.Set. It extends this client's best chain, or, when this
// client owns a node (or holds no chain), starts a new chain at hop 1.
func (t Tickets) Issue(friend string, days int) (string, error) {
	return t.c.issueTicket(friend, days)
}
