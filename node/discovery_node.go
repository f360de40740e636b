package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// discoveryNode is the node as discovery sees it (discovery.Node): it
// resyncs a channel with a peer that proved it serves it, lets the
// node's registered users hand over statements for their channels and
// introduce other super nodes, and serves what was handed over.
type discoveryNode struct {
	n   *Node
	reg *routing.Registry
}

var _ discovery.Node = discoveryNode{}

func (d discoveryNode) PeerAuthorized(p peer.ID, ch channel.ID) {
	if s := d.n.syncReady.Load(); s != nil {
		s.Resync(p, ch)
	}
}

func (d discoveryNode) HandOverChannels(p peer.ID) []channel.ID { return d.n.registeredChannels(p) }

func (d discoveryNode) HandedOver([]channel.ID) { d.n.serveRegistered() }

func (d discoveryNode) MayIntroduce(p peer.ID) bool { return d.reg.Registered(p) }

// registeredChannels returns the channels of the registration p is the
// device of: what p may hand over serving statements for.
func (n *Node) registeredChannels(p peer.ID) []channel.ID {
	for _, u := range n.Registry.Users() {
		if u.Peer == p {
			return u.Channels
		}
	}
	return nil
}
