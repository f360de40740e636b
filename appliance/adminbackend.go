package appliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/redpanda-p2p/homenode/appliance/admin"
	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/status"
)

// Status implements admin.Backend.
func (a *Appliance) Status(ctx context.Context) (status.Report, error) { return a.Report(ctx) }

// Peers implements admin.Backend: every connected peer.
func (a *Appliance) Peers(ctx context.Context) ([]status.Peer, error) {
	h := a.node.Host
	var out []status.Peer
	for _, c := range h.Network().Conns() {
		dir := status.Outbound
		if c.Stat().Direction == network.DirInbound {
			dir = status.Inbound
		}
		out = append(out, status.Peer{
			ID:        c.RemotePeer().String(),
			Addr:      c.RemoteMultiaddr().String(),
			Direction: dir,
			Latency:   h.Peerstore().LatencyEWMA(c.RemotePeer()),
		})
	}
	return out, nil
}

// Users implements admin.Backend: the registered users, lowest hop first.
func (a *Appliance) Users(ctx context.Context) ([]status.User, error) {
	return statusUsers(a.node.Registry.Users()), nil
}

func statusUsers(us []routing.Registration) []status.User {
	var out []status.User
	for _, u := range us {
		su := status.User{Identity: u.Identity.String(), Hop: status.Hop(u.Hop), Registered: u.Since}
		if u.SponsoredBy != (channel.IdentityKey{}) {
			su.Sponsor = u.SponsoredBy.String()
		}
		for _, k := range u.Path {
			su.Chain = append(su.Chain, k.String())
		}
		out = append(out, su)
	}
	return out
}

// Branch implements admin.BranchBackend: the registered users who asked
// for the channel, with the trust chains that admitted them.
func (a *Appliance) Branch(ctx context.Context, ch string) ([]status.User, error) {
	id, err := parseChannelArg(ch)
	if err != nil {
		return nil, err
	}
	return statusUsers(a.node.Registry.Branch(id)), nil
}

// Prune implements admin.BranchBackend: node.PruneBranch, which also
// deletes what the revoked users brought in and nobody else wants.
func (a *Appliance) Prune(ctx context.Context, ch string) ([]string, error) {
	id, err := parseChannelArg(ch)
	if err != nil {
		return nil, err
	}
	gone, err := a.node.PruneBranch(id)
	if errors.Is(err, routing.ErrNoBranch) {
		return nil, fmt.Errorf("%w: no registered user (other than the owner) asked for channel %s", admin.ErrNotFound, id)
	}
	var out []string
	for _, k := range gone {
		out = append(out, k.String())
	}
	if err != nil {
		return out, err
	}
	a.log.Warn("branch pruned by the owner", "channel", id.String(), "revoked", len(out))
	return out, nil
}

// Channels implements admin.Backend: the channels with stored messages,
// and blocked ones.
func (a *Appliance) Channels(ctx context.Context) ([]status.Channel, error) {
	cs, err := a.node.Store.Channels()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	control := a.node.ControlChannels()
	blocked := a.blocks.list()
	seen := map[channel.ID]bool{}
	out := make([]status.Channel, 0, len(cs))
	for _, c := range cs {
		seen[c.Channel] = true
		sc := status.Channel{ID: c.Channel.String(), Messages: int64(c.Messages), Bytes: c.Bytes, Blocked: blocked[c.Channel],
			Control: control[c.Channel]}
		if c.Newest > 0 {
			sc.Newest = time.UnixMilli(c.Newest)
		}
		out = append(out, sc)
	}
	for id := range blocked {
		if !seen[id] {
			out = append(out, status.Channel{ID: id.String(), Blocked: true})
		}
	}
	return out, nil
}

// Revoke implements admin.Backend.
func (a *Appliance) Revoke(ctx context.Context, identity string) ([]string, error) {
	id, err := channel.ParseIdentityKey(identity)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", admin.ErrMalformedRequest, err)
	}
	removed, err := a.node.Revoke(id)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(removed))
	for i, k := range removed {
		out[i] = k.String()
	}
	a.log.Warn("revoked by the owner", "identity", identity, "removed", len(out))
	return out, nil
}

// Block implements admin.Backend: the channel is no longer stored,
// relayed or served, starting now, and what it stored is deleted.
func (a *Appliance) Block(ctx context.Context, ch string) error {
	id, err := parseChannelArg(ch)
	if err != nil {
		return err
	}
	if err := a.blocks.block(id); err != nil {
		return err
	}
	// Blocking frees what the channel stored (docs/SECURITY.md).
	removed, freed, err := a.node.Store.DeleteChannel(id)
	a.log.Warn("channel blocked by the owner", "channel", id.String(), "messages_deleted", removed, "bytes_freed", freed)
	if err != nil {
		return fmt.Errorf("blocked, but deleting its stored messages failed: %w", err)
	}
	return nil
}

// Unblock implements admin.Backend.
func (a *Appliance) Unblock(ctx context.Context, ch string) error {
	id, err := parseChannelArg(ch)
	if err != nil {
		return err
	}
	was, err := a.blocks.unblock(id)
	if err != nil {
		return err
	}
	if !was {
		return fmt.Errorf("%w: channel %s is not blocked", admin.ErrNotFound, id)
	}
	a.log.Info("channel unblocked by the owner", "channel", id.String())
	return nil
}

// Reset implements admin.Backend: the factory reset of a running node.
// The identity stays; renewing it needs the node stopped (homenode reset
// --new-identity).
func (a *Appliance) Reset(ctx context.Context) error {
	if err := a.prov.Reset(ctx, false); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	if a.cfg.Owner != "" {
		a.log.Warn("factory reset done: registrations and stored messages forgotten; owned by the configured owner again")
		return nil
	}
	a.log.Warn("factory reset done: owner, registrations and stored messages forgotten; waiting for pairing")
	return nil
}

func parseChannelArg(s string) (channel.ID, error) {
	s = strings.TrimSpace(s)
	if id, err := channel.ParseID(s); err == nil {
		return id, nil
	}
	if k, err := channel.ParseKey(s); err == nil {
		return k.ID(), nil
	}
	return channel.ID{}, fmt.Errorf("%w: %q is neither a channel ID (64 hex digits) nor a key string", admin.ErrMalformedRequest, s)
}

var (
	_ admin.Backend       = (*Appliance)(nil)
	_ admin.BranchBackend = (*Appliance)(nil)
)
