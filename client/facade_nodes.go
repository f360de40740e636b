package client

import (
	"context"
)

// Nodes is the super nodes the client uses: the list and its upkeep
// (adding, removing, probing, registering again), the node the client owns
// (adopting it, dialling it, the keys its owner gives it) and the reports
// it posts. Get one with Client.Nodes.
type Nodes struct{ c *Client }

// Nodes is the client's super nodes (facade_nodes.go).
func (c *Client) Nodes() Nodes { return Nodes{c} }

// HomeKey makes the master and node channels if this identity has
// none yet and returns the node channel's read-only key, which the owner
// gives its home node (redpanda pair does) so that the node serves every
// channel the identity's devices list.
func (n Nodes) HomeKey(ctx context.Context) (string, error) {
	return n.c.homeNodeKey(ctx)
}

// ChannelKey returns the read-only key of the node channel: what the
// identity's home node is given to learn which channels to serve.
func (n Nodes) ChannelKey() (string, error) {
	return n.c.nodeChannelKey()
}

// Update brings the client's nodes up to date now: it registers with
// them again with the current channels, hands them the statements that
// are due and introduces the nodes it learned. A running client does this
// by itself; a one-shot command calls it after changing channels.
func (n Nodes) Update(ctx context.Context) error {
	return n.c.updateNodes(ctx)
}

// ReportKey returns the write-only key of the master channel: what the
// owner gives its home node for reports (owner protocol "report-key").
func (n Nodes) ReportKey() (string, error) {
	return n.c.reportKey()
}

// Reports returns the reports kept, oldest first.
func (n Nodes) Reports() ([]NodeReport, error) {
	return n.c.nodeReports()
}

// Add adds a super node by a multiaddr ending in /p2p/PEER-ID and
// returns its peer ID. Adding a known node updates its addresses.
func (n Nodes) Add(addr string) (string, error) {
	return n.c.addNode(addr)
}

// Remove forgets the super node id (a peer ID, or a multiaddr ending
// in /p2p/PEER-ID), here and on the identity's other devices: its
// record, the statements handed to it and the connection. A registration
// there lapses when it expires; the node is learned again if an advert
// or a hint names it.
func (n Nodes) Remove(id string) error {
	return n.c.removeNode(id)
}

// List lists the known super nodes, best first (registered, then by hop,
// round trip and load).
func (n Nodes) List() ([]Node, error) {
	return n.c.nodes()
}

// Connected returns the peer IDs of the nodes the client has a sync session
// with now.
func (n Nodes) Connected() []string {
	return n.c.peers()
}

// Probe dials every known node and measures its round trip, in parallel,
// so that List reports fresh RTTs. Unreachable nodes keep RTT 0 and get
// LastError.
func (n Nodes) Probe(ctx context.Context) error {
	return n.c.probeNodes(ctx)
}

// Adopt makes a node this client just paired with (became the owner
// of) one of its nodes: it records the node's addresses (multiaddrs
// without /p2p), registers with it at hop 0 together with the other best
// nodes, hands it the serving statements for the writable channels, and
// returns its record. It fails with ErrNotOwned when the node registers
// the client at another hop, or not at all.
func (n Nodes) Adopt(ctx context.Context, nodeID string, addrs []string) (Node, error) {
	return n.c.adoptNode(ctx, nodeID, addrs)
}

// Owned returns the peer ID of the node that last registered this
// client at hop 0 (the node it paired with), or ErrNotOwned.
func (n Nodes) Owned() (string, error) {
	return n.c.ownedNode()
}

// Dial connects to a known node (by peer ID) at its recorded
// addresses, for a request outside the sync protocol.
func (n Nodes) Dial(ctx context.Context, nodeID string) error {
	return n.c.dialNode(ctx, nodeID)
}
