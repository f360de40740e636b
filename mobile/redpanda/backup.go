package redpanda

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	gostrings "strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// Backup seals this identity, its channels, tickets, nodes and pending
// invitations under passphrase (at least 10 characters; several words)
// into an encrypted blob for the app to keep (a file the user exports).
// Messages are not in it. It costs about a second of CPU.
func (c *Client) Backup(passphrase string) ([]byte, error) {
	var blob []byte
	err := c.local(CodeInternal, func(sdk *client.Client) (err error) {
		blob, err = sdk.Backups().Seal(passphrase)
		return err
	})
	return blob, err
}

// BackupToNode makes a backup (as Backup) and keeps it on the home node
// this identity owns, where a new phone finds it with the node's QR code
// and the passphrase alone (RestoreFromNode).
func (c *Client) BackupToNode(passphrase string, timeoutMs int64, cancel *Cancel) error {
	return c.long(timeoutMs, msDuration(DefaultBackupTimeoutMs), cancel, CodeInternal, dials, func(ctx context.Context, sdk *client.Client) error {
		p, err := ownedPeer(sdk, "")
		if err != nil {
			return err
		}
		blob, err := sdk.Backups().Seal(passphrase)
		if err != nil {
			return err
		}
		if err := sdk.Nodes().Dial(ctx, p.String()); err != nil {
			return failCode(CodeUnreachable, err.Error())
		}
		lookup := client.BackupLookupID(passphrase, p.String())
		return sdk.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
			return owner.PutBackup(ctx, h, p, key, lookup, blob)
		})
	})
}

// Restore writes a backup blob into home, which must hold no identity
// yet; Open(home) is then the backed-up identity. Nothing is written
// unless passphrase opens the blob.
func Restore(home, passphrase string, blob []byte) error {
	return fail(client.Restore(home, passphrase, blob), CodeInternal)
}

// RestoreFromNode fetches the backup kept on a home node (named by its
// pairing code, which the node shows again after a factory reset of the
// phone, or by its multiaddr with /p2p/) with the passphrase, and
// restores it into home as Restore does. A wrong passphrase and no backup
// look the same to the node: CodeNoBackup.
func RestoreFromNode(home, node, passphrase string, timeoutMs int64, cancel *Cancel) error {
	ai, err := nodeAddrInfo(node)
	if err != nil {
		return err
	}
	ctx, stop := callContext(context.Background(), timeoutMs, msDuration(DefaultBackupTimeoutMs), cancel)
	defer stop()
	blob, err := fetchBackup(ctx, home, ai, passphrase)
	if err != nil {
		return ctxFail(err, ctx, cancel, func() int { return 0 }, CodeUnreachable)
	}
	return Restore(home, passphrase, blob)
}

func nodeAddrInfo(node string) (peer.AddrInfo, error) {
	node = gostrings.TrimSpace(node)
	if u, err := provisioning.ParseURI(node); err == nil {
		ai := peer.AddrInfo{}
		if ai.ID, err = u.PeerID(); err != nil {
			return ai, fail(err, CodeBadPairingCode)
		}
		for _, a := range u.Addrs {
			ai.Addrs = append(ai.Addrs, a.Multiaddr())
		}
		return ai, nil
	}
	ma, err := multiaddr.NewMultiaddr(node)
	if err != nil {
		return peer.AddrInfo{}, failCode(CodeBadInput, fmt.Sprintf("%q is neither a pairing code nor a multiaddr", node))
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma)
	if err != nil {
		return peer.AddrInfo{}, failCode(CodeBadInput, fmt.Sprintf("%q must end in /p2p/PEER-ID", node))
	}
	return *ai, nil
}

// fetchBackup asks the node for the blob from a throwaway identity (the
// new phone has none yet) in a scratch home beside home, removed after.
func fetchBackup(ctx context.Context, home string, ai peer.AddrInfo, passphrase string) ([]byte, error) {
	parent := filepath.Dir(filepath.Clean(home))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(parent, ".redpanda-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	log, err := newLogger("")
	if err != nil {
		return nil, err
	}
	tmp, err := client.Open(client.Config{Home: scratch, Create: true, DialOnly: true, Owner: "redpanda restore", Logger: log})
	if err != nil {
		return nil, err
	}
	defer tmp.Close()
	var blob []byte
	err = tmp.UseIdentity(func(h host.Host, _ ed25519.PrivateKey) error {
		if err := h.Connect(ctx, ai); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return failCode(CodeUnreachable, fmt.Sprintf("cannot reach node %s: %v", ai.ID, err))
		}
		blob, err = owner.FetchBackup(ctx, h, ai.ID, client.BackupLookupID(passphrase, ai.ID.String()))
		return err
	})
	if errors.Is(err, owner.ErrNoBackup) {
		return nil, fmt.Errorf("%w (wrong passphrase, or no backup was kept on this node)", err)
	}
	return blob, err
}
