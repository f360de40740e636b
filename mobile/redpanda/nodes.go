package redpanda

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	gostrings "strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// reachTimeout bounds the first dial of a pairing, so that an unreachable
// node is reported as such rather than as a slow answer.
const reachTimeout = 20 * time.Second

// CheckPairingCode reads the text of a home node's pairing QR code
// ("RPPAIR1:…") without using it: which node it names. Show it before
// pairing; a code that is not one fails with CodeBadPairingCode ("not a
// redPanda pairing code").
func CheckPairingCode(text string) (*PairingCode, error) {
	u, err := provisioning.ParseURI(gostrings.TrimSpace(text))
	if err != nil {
		return nil, fail(err, CodeBadPairingCode)
	}
	pid, err := u.PeerID()
	if err != nil {
		return nil, fail(err, CodeBadPairingCode)
	}
	pc := &PairingCode{NodeID: pid.String()}
	for _, a := range u.Addrs {
		pc.addrs = append(pc.addrs, a.Multiaddr().String())
	}
	return pc, nil
}

// Pair makes this identity the owner of the home node whose QR code
// reads pairingCode, registers there at hop 0 and has the node serve
// every channel of this identity's devices. It returns the node. The
// node must be waiting for pairing (a new or factory-reset node) and on
// a network this phone reaches. Allow it minutes (the default timeout is
// 5): a node under a flood of wrong attempts answers slowly.
func (c *Client) Pair(pairingCode string, timeoutMs int64, cancel *Cancel) (*Node, error) {
	u, err := provisioning.ParseURI(gostrings.TrimSpace(pairingCode))
	if err != nil {
		return nil, fail(err, CodeBadPairingCode)
	}
	pid, err := u.PeerID()
	if err != nil {
		return nil, fail(err, CodeBadPairingCode)
	}
	ai := peer.AddrInfo{ID: pid}
	var addrs []string
	for _, a := range u.Addrs {
		ai.Addrs = append(ai.Addrs, a.Multiaddr())
		addrs = append(addrs, a.Multiaddr().String())
	}
	var n client.Node
	err = c.long(timeoutMs, msDuration(DefaultPairTimeoutMs), cancel, CodeInternal, dials, func(ctx context.Context, sdk *client.Client) error {
		err := sdk.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
			rctx, stop := context.WithTimeout(ctx, reachTimeout)
			err := h.Connect(rctx, ai)
			stop()
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				return failCode(CodeUnreachable, fmt.Sprintf("cannot reach node %s at %s (same network? is it on?): %v", pid, gostrings.Join(addrs, ", "), err))
			}
			return provisioning.PairURI(ctx, h, u, key)
		})
		if err != nil {
			return err
		}
		if n, err = sdk.Nodes().Adopt(ctx, pid.String(), addrs); err != nil {
			return fmt.Errorf("paired, but %w", err)
		}
		// The node follows this identity's node channel, so it serves the
		// channels of every device of the owner (docs/DEVICES.md).
		nodeKey, err := sdk.Nodes().HomeKey(ctx)
		if err == nil {
			err = sdk.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
				return owner.Follow(ctx, h, pid, key, nodeKey)
			})
		}
		if err != nil {
			c.log.Warn("pair: the node will serve only this device's channels", "err", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return toNode(n), nil
}

// ownedPeer returns the node this client owns, or the one named.
func ownedPeer(sdk *client.Client, nodeID string) (peer.ID, error) {
	if nodeID == "" {
		var err error
		if nodeID, err = sdk.Nodes().Owned(); err != nil {
			return "", err
		}
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return "", failCode(CodeBadInput, fmt.Sprintf("%q is not a peer ID", nodeID))
	}
	return p, nil
}

// NodeStatus asks a node this identity owns (nodeID "" for the paired
// one) for its status report, over the owner-only protocol.
func (c *Client) NodeStatus(nodeID string, timeoutMs int64, cancel *Cancel) (*NodeStatus, error) {
	var r status.Report
	err := c.long(timeoutMs, msDuration(DefaultNodeTimeoutMs), cancel, CodeUnreachable, dials, func(ctx context.Context, sdk *client.Client) error {
		p, err := ownedPeer(sdk, nodeID)
		if err != nil {
			return err
		}
		if err := sdk.Nodes().Dial(ctx, p.String()); err != nil {
			return err
		}
		return sdk.UseIdentity(func(h host.Host, key ed25519.PrivateKey) (err error) {
			r, err = owner.Status(ctx, h, p, key)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	js, _ := json.Marshal(r)
	return &NodeStatus{NodeID: r.Node.PeerID, Version: r.Version, Board: r.Board, UptimeSeconds: int64(r.Uptime / time.Second),
		PairingState: string(r.Pairing.State), Owner: r.Pairing.Owner, Reachable: r.Reachability.Reachable,
		Diagnosis: r.Reachability.Diagnosis, ExternalAddr: r.Reachability.ExternalAddr, Peers: r.Peers.Count,
		Users: r.Users.Total(), Channels: len(r.Channels), Messages: r.Messages.Count,
		DiskFreeBytes: int64(r.Disk.FreeBytes), DiskBytes: int64(r.Disk.TotalBytes), ClockSynced: r.Clock.Synchronized,
		Summary: status.StatusLine(r), JSON: string(js), warnings: r.Warnings}, nil
}

// AddNode adds a super node by its multiaddr ending in /p2p/PEER-ID and
// returns its peer ID (a node named in no key string, ticket or link).
func (c *Client) AddNode(multiaddr string) (string, error) {
	var id string
	err := c.local(CodeBadInput, func(sdk *client.Client) (err error) {
		id, err = sdk.Nodes().Add(multiaddr)
		return err
	})
	return id, err
}

// Nodes lists the known super nodes, best first.
func (c *Client) Nodes() (*NodeList, error) {
	l := &NodeList{}
	err := c.local(CodeInternal, func(sdk *client.Client) error {
		ns, err := sdk.Nodes().List()
		for _, n := range ns {
			l.items = append(l.items, toNode(n))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// RemoveNode forgets a super node (by peer ID, or a multiaddr ending in
// /p2p/PEER-ID), here and on the identity's other devices.
func (c *Client) RemoveNode(nodeID string) error {
	return c.local(CodeBadInput, func(sdk *client.Client) error { return sdk.Nodes().Remove(nodeID) })
}

// OwnedNode returns the peer ID of the node this identity paired with,
// or fails with CodeNotOwner.
func (c *Client) OwnedNode() (string, error) {
	var id string
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		id, err = sdk.Nodes().Owned()
		return err
	})
	return id, err
}

// IssueTicket signs a hop ticket for a friend's identity ("rpi…"), valid
// for days (<= 0: 90), and returns the chain string the friend sets
// (SetTicket): it lets them register at this identity's home node.
func (c *Client) IssueTicket(friendID string, days int) (string, error) {
	var chain string
	err := c.local(CodeBadInput, func(sdk *client.Client) (err error) {
		chain, err = sdk.Tickets().Issue(friendID, days)
		return err
	})
	return chain, err
}

// SetTicket stores a chain a friend issued to this identity; the nodes
// its hint names become nodes this client registers at (on Connect).
func (c *Client) SetTicket(chain string) (*Ticket, error) {
	var t client.Ticket
	err := c.local(CodeBadTicket, func(sdk *client.Client) (err error) {
		t, err = sdk.Tickets().Set(chain)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toTicket(t), nil
}

// Tickets lists the chains this identity holds, lowest hop first.
func (c *Client) Tickets() (*TicketList, error) {
	l := &TicketList{}
	err := c.local(CodeInternal, func(sdk *client.Client) error {
		ts, err := sdk.Tickets().List()
		for _, t := range ts {
			l.items = append(l.items, toTicket(t))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}
