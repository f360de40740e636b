package client

import (
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

// controlMsg is what a control handler is given.
type controlMsg struct {
	c  *Client
	cs *chanState
	m  *channel.Message
}

// controls maps each control tag this client reads (node/control) to its
// handler. A tag not in it is ignored.
var controls = func() *control.Table[controlMsg] {
	var t control.Table[controlMsg]
	t.On(control.Device, func(x controlMsg) { x.c.handleDeviceControl(x.cs, x.m) })
	t.On(control.Adverts, func(x controlMsg) { x.c.handleAdverts(x.cs, x.m) })
	t.On(control.FriendPath, func(x controlMsg) { x.c.handleFriendPath(x.cs, x.m) })
	t.On(control.LookupQuery, func(x controlMsg) { x.c.handleLookupQuery(x.cs, x.m) })
	t.On(control.LookupAnswer, func(x controlMsg) { x.c.handleLookupAnswer(x.cs, x.m) })
	return &t
}()

// handleControl takes a control message. The identity's own channels
// come first, whatever the tag: the node channel is for the node, and in
// the master channel another author can only be the owned node, with a
// report (nodereports.go). Called under procMu.
func (c *Client) handleControl(cs *chanState, m *channel.Message) {
	switch {
	case cs.name == NodeChannel:
		return
	case cs.name == MasterChannel && m.Author != c.self.Public():
		c.handleNodeReport(m)
		return
	}
	controls.Dispatch(m.Body, controlMsg{c, cs, m})
}
