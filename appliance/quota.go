package appliance

import (
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/status"
	"github.com/redpanda-p2p/homenode/node/channel"
)

// diskFullRecent is how long after a write failed for a full disk the
// status page still says so.
const diskFullRecent = 10 * time.Minute

// storageWarnings are the status page's sentences about the store.
func (a *Appliance) storageWarnings() []string {
	at := a.node.Store.DiskFullAt()
	if at.IsZero() || time.Since(at) > diskFullRecent {
		return nil
	}
	return []string{fmt.Sprintf("The disk was full %s ago: new messages are refused (clients are told \"disk full\") "+
		"until space is freed; stored messages are kept.", status.Duration(time.Since(at)))}
}

// channelsOf maps each registered user to the channels it asked for,
// taken before a revocation removes them.
func (a *Appliance) channelsOf() map[channel.IdentityKey][]channel.ID {
	out := map[channel.IdentityKey][]channel.ID{}
	for _, u := range a.node.Registry.Users() {
		out[u.Identity] = u.Channels
	}
	return out
}

// dropRevoked deletes what the revoked users brought in and nobody else
// still wants (docs/SECURITY.md, "Storage quotas").
func (a *Appliance) dropRevoked(chs map[channel.IdentityKey][]channel.ID, revoked []channel.IdentityKey) {
	var drop []channel.ID
	for _, k := range revoked {
		drop = append(drop, chs[k]...)
	}
	if len(drop) == 0 {
		return
	}
	removed, freed, err := a.node.DropUnserved(drop)
	if err != nil {
		a.log.Error("deleting the messages of revoked users", "err", err)
	}
	if removed > 0 {
		a.log.Info("messages of revoked users deleted", "messages", removed, "bytes", freed)
	}
}
