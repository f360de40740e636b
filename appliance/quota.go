package appliance

import (
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/status"
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
