package appliance

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// accept is the sync layer's policy: blocked channels are neither stored,
// announced nor served.
func (a *Appliance) accept(_ peer.ID, ch channel.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.blocked[ch]
}

func (a *Appliance) loadBlocked() error {
	return a.node.Store.Meta("blocked").ForEach(func(k, _ []byte) error {
		var id channel.ID
		if len(k) == len(id) {
			copy(id[:], k)
			a.blocked[id] = true
		}
		return nil
	})
}
