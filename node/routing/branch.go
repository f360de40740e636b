package routing

import (
	"errors"
	"fmt"
	"slices"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// ErrNoBranch: no registered user other than the owner asked for the
// channel, so there is no branch to prune.
var ErrNoBranch = errors.New("routing: no registered user (other than the owner) asked for the channel")

// Branch returns the registrations served now that asked for ch, lowest
// hop first, with the trust chains that admitted them (paper §4.5: the
// owner sees which branch a flooding channel came through).
func (r *Registry) Branch(ch channel.ID) []Registration {
	var out []Registration
	for _, u := range r.Users() {
		if slices.Contains(u.Channels, ch) {
			out = append(out, u)
		}
	}
	return out
}

// PruneBranch cuts, in one step, the branch a channel came in through: it
// revokes whoever vouched for each user that asked for ch — the user's
// sponsor, or the user itself when the owner is the sponsor — and with
// them everyone they sponsored (Revoke). The owner is never revoked. It
// returns the identities removed, in the order they were revoked; when
// there were none, an error wrapping ErrNoBranch. An error part way
// returns what earlier revocations removed.
func (r *Registry) PruneBranch(ch channel.ID) ([]channel.IdentityKey, error) {
	var out []channel.IdentityKey
	done := map[channel.IdentityKey]bool{}
	for _, u := range r.Users() {
		if !slices.Contains(u.Channels, ch) || u.Hop == 0 {
			continue
		}
		target := u.Identity
		if len(u.Path) > 1 {
			target = u.SponsoredBy
		}
		if done[target] || done[u.Identity] {
			continue
		}
		done[target] = true
		removed, err := r.Revoke(target)
		if err != nil {
			return out, err
		}
		for _, k := range removed {
			done[k] = true
		}
		out = append(out, removed...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: channel %s", ErrNoBranch, ch)
	}
	return out, nil
}
