package routing

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Reset is the factory reset: it forgets the owner, every registration,
// revocation and undelivered notice, in memory and in the records. The
// node serves nobody until SetOwner (a new pairing) or a stranger's
// registration where allowed. It is idempotent.
func (r *Registry) Reset() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	var keys [][]byte
	err := r.recs.ForEach(func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err == nil {
		for _, k := range keys {
			if err = r.recs.Delete(k); err != nil {
				break
			}
		}
	}
	for _, e := range r.regs {
		r.deleteEntryLocked(e)
		r.unprotectDevicesLocked(e)
	}
	r.owner = channel.IdentityKey{}
	r.held = map[channel.IdentityKey]*entry{}
	r.revoked = map[channel.IdentityKey]bool{}
	r.pending = map[channel.IdentityKey]pendingNotice{}
	r.mu.Unlock()
	r.log.Warn("registrations reset")
	r.changed()
	if err != nil {
		return fmt.Errorf("routing.Reset: %w", err)
	}
	return nil
}

// Registered reports whether p is the device of a registration served now:
// the relay service is for registered users only.
func (r *Registry) Registered(p peer.ID) bool {
	r.devMu.RLock()
	defer r.devMu.RUnlock()
	return r.devices[p] > 0
}
