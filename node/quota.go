package node

import (
	"errors"
	"fmt"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Storage quotas per registrant (docs/SECURITY.md, "Storage quotas").
//
// Every served channel is charged to one account, the first of:
//   - the owner, for the channels the owner registered, the operator
//     serves by configuration, or the owner's devices list in the owner's
//     node channel: the owner's account has no limit of its own and may
//     use the whole total budget, including store.Options.ReservedBytes;
//   - else the registrant nearest to the owner among those who asked for
//     it (lowest hop, then registered longest, then identity bytes: the
//     order of routing.Registry.Users), each with Config.RegistrantBytes;
//   - else (a channel served only because a registrant handed over its
//     statement) one "handed over" account with Config.RegistrantBytes.
//
// A channel several registrants want counts once, against the nearest
// one: the farther registrant cannot move its own flood onto a nearer
// friend's account, since it can only add channels to its own
// registration. Accounts other than the owner's together stop
// ReservedBytes short of the total, so friends and strangers cannot take
// the owner's share.

// ownerAccount is the owner's account in the store's plan.
var ownerAccount = store.Account{Name: "owner", Reserved: true}

// chargeChannels gives the store the accounts plan for the served set
// want, from the operator's channels and users (lowest hop first).
func (n *Node) chargeChannels(operator []channel.ID, users []routing.Registration, want map[channel.ID]bool) {
	plan := make(map[channel.ID]store.Account, len(want))
	for _, ch := range operator {
		plan[ch] = ownerAccount
	}
	for _, u := range users {
		acc := ownerAccount
		if u.Hop != 0 {
			acc = store.Account{Name: u.Identity.String(), Limit: n.cfg.RegistrantBytes}
		}
		for _, ch := range u.Channels {
			if _, ok := plan[ch]; !ok {
				plan[ch] = acc
			}
		}
	}
	for ch := range want {
		if _, ok := plan[ch]; !ok {
			plan[ch] = store.Account{Name: "handed over", Limit: n.cfg.RegistrantBytes}
		}
	}
	n.Store.SetAccounts(plan)
}

// DropUnserved deletes the stored messages of each of chs that the node
// no longer serves (nobody registered wants it, the operator does not
// serve it): what revoking users does with what they brought in. A
// channel someone still wants keeps its messages, charged now to the
// next registrant who wants it. Expired registrations are not dropped
// this way: their phones may come back within the retention window.
func (n *Node) DropUnserved(chs []channel.ID) (removed int, freed int64, err error) {
	n.serveMu.Lock()
	defer n.serveMu.Unlock()
	var errs []error
	for _, ch := range chs {
		if n.served[ch] {
			continue
		}
		r, f, derr := n.Store.DeleteChannel(ch)
		removed += r
		freed += f
		if derr != nil {
			errs = append(errs, derr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, freed, fmt.Errorf("node.DropUnserved: %w", err)
	}
	return removed, freed, nil
}

// Revoke revokes id and everyone whose chain passes through it
// (routing.Registry.Revoke), then deletes what they brought in and nobody
// else still wants (DropUnserved). It returns the identities removed.
func (n *Node) Revoke(id channel.IdentityKey) ([]channel.IdentityKey, error) {
	chs := n.channelsOf()
	removed, err := n.Registry.Revoke(id)
	if err != nil {
		return nil, err
	}
	n.dropRevoked(chs, removed)
	return removed, nil
}

// PruneBranch cuts the branch channel ch came in through
// (routing.Registry.PruneBranch), then deletes what the revoked users
// brought in and nobody else still wants, also after an error part way.
func (n *Node) PruneBranch(ch channel.ID) ([]channel.IdentityKey, error) {
	chs := n.channelsOf()
	removed, err := n.Registry.PruneBranch(ch)
	n.dropRevoked(chs, removed)
	return removed, err
}

// channelsOf maps each registered user to the channels it asked for,
// taken before a revocation removes them.
func (n *Node) channelsOf() map[channel.IdentityKey][]channel.ID {
	out := map[channel.IdentityKey][]channel.ID{}
	for _, u := range n.Registry.Users() {
		out[u.Identity] = u.Channels
	}
	return out
}

// dropRevoked deletes what the revoked users brought in and nobody else
// still wants; a failure is logged, since the revocation itself stands.
func (n *Node) dropRevoked(chs map[channel.IdentityKey][]channel.ID, revoked []channel.IdentityKey) {
	var drop []channel.ID
	for _, k := range revoked {
		drop = append(drop, chs[k]...)
	}
	if len(drop) == 0 {
		return
	}
	removed, freed, err := n.DropUnserved(drop)
	if err != nil {
		n.log.Error("deleting the messages of revoked users", "err", err)
	}
	if removed > 0 {
		n.log.Info("messages of revoked users deleted", "messages", removed, "bytes", freed)
	}
}
