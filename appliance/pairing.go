package appliance

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// pairingChanged shows or hides the pairing QR code and sets the LED.
func (a *Appliance) pairingChanged(ctx context.Context, s provisioning.State) {
	select {
	case a.ledStates <- s:
	default:
	}
	switch s {
	case provisioning.StateWaiting:
		uri, err := a.prov.URI()
		if err != nil {
			a.log.Error("pairing URI", "err", err)
			return
		}
		a.log.Info("waiting for pairing: scan the QR code with the redPanda app", "uri", uri)
		if a.opts.Console != nil {
			qr, err := provisioning.QRTerminal(uri)
			if err == nil {
				fmt.Fprintf(a.opts.Console, "\nScan to pair this home node with your phone:\n\n%s\n%s\n\n", qr, uri)
			}
		}
	case provisioning.StateOwned:
		if o, ok := a.prov.Owner(); ok {
			if err := a.node.SetOwner(ownerKey(o)); err != nil {
				a.log.Error("setting the owner", "err", err)
			}
			a.log.Info("paired", "owner", ownerString(o))
			if a.opts.Console != nil {
				fmt.Fprintf(a.opts.Console, "Paired with %s. This node is now yours.\n", ownerString(o))
			}
		}
	}
	a.pushStatus(ctx)
}

func ownerKey(o provisioning.Owner) channel.IdentityKey {
	var k channel.IdentityKey
	copy(k[:], o.Key)
	return k
}

func ownerString(o provisioning.Owner) string { return ownerKey(o).String() }

// forgetOwnerData is the factory reset's hook: stored messages, sync
// state and blocks go; the identity stays unless the reset renews it.
func (a *Appliance) forgetOwnerData(ctx context.Context) error {
	a.blocks.forget()
	return a.node.Reset("provisioning")
}

// The owner's node channel key, kept so the node follows it after a
// restart; the factory reset wipes it with the rest.
var (
	followBucket = "owner-channel"
	followKey    = []byte("key")
)

// follow is the owner protocol's "follow": serve what the owner's
// devices list in their node channel, from now on and after restarts.
func (a *Appliance) follow(key string) error {
	if err := a.node.FollowOwner(key); err != nil {
		return err
	}
	if err := a.node.Store.Meta(followBucket).Put(followKey, []byte(key)); err != nil {
		return fmt.Errorf("keeping the owner channel key: %w", err)
	}
	a.log.Info("following the owner's node channel")
	return nil
}

// followKept follows again, after a restart, the owner's node channel
// that follow kept.
func (a *Appliance) followKept() {
	key, err := a.node.Store.Meta(followBucket).Get(followKey)
	if err != nil {
		return
	}
	if err := a.node.FollowOwner(string(key)); err != nil {
		a.log.Warn("following the owner's node channel", "err", err)
	}
}

// configOwner is the owner set by configuration as provisioning takes it
// (nil for none); Validate and startNode have checked it parses.
func (a *Appliance) configOwner() ed25519.PublicKey {
	if a.cfg.Owner == "" {
		return nil
	}
	k, err := channel.ParseIdentityKey(a.cfg.Owner)
	if err != nil {
		return nil
	}
	return ed25519.PublicKey(k[:])
}
