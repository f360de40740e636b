package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/owner"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// Backups (docs/BACKUP.md): create seals identity, channels, tickets and
// nodes under a passphrase into a file and, with --node, onto the owned
// home node; restore puts them into a new home from a file or from a node.

// envPassphrase lets scripts pass the passphrase without a terminal; a
// passphrase is never a command-line argument (shell history, ps).
const envPassphrase = "REDPANDA_BACKUP_PASSPHRASE"

const defaultBackupFile = "redpanda-backup.rpbk"

func backupCommand() *command {
	return &command{name: "backup", summary: "encrypted backups: create [FILE] [--node], restore FILE | restore --node ADDR", subs: []*command{
		{name: "create", summary: "seal identity and channels under a passphrase: create [FILE] [--node]", run: cmdBackupCreate},
		{name: "restore", summary: "restore into a new home: restore FILE | restore --node MULTIADDR|PAIRING-URI", run: cmdBackupRestore},
	}}
}

// passphrase reads it from $REDPANDA_BACKUP_PASSPHRASE, else from the
// first line of file ("-" is stdin).
func passphrase(file string, stdin io.Reader) (string, error) {
	if p := os.Getenv(envPassphrase); p != "" && file == "" {
		return p, nil
	}
	var r io.Reader = stdin
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("passphrase: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("passphrase: %w", err)
	}
	p := strings.TrimRight(line, "\r\n")
	if p == "" {
		return "", usageErr("no passphrase: set $%s or give --passphrase-file FILE (- for stdin)", envPassphrase)
	}
	return p, nil
}

func cmdBackupCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("backup create", stderr)
	passFile := o.fs.String("passphrase-file", "", "read the passphrase from this file (- for stdin); default $"+envPassphrase)
	toNode := o.fs.Bool("node", false, "also keep the backup on the home node this client owns")
	pos, err := o.positional(args, 0, 1, "[FILE] [--node] [--passphrase-file FILE]")
	if err != nil {
		return err
	}
	file := defaultBackupFile
	if len(pos) == 1 {
		file = pos[0]
	}
	pass, err := passphrase(*passFile, os.Stdin)
	if err != nil {
		return err
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	blob, err := c.Backups().Seal(pass)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(file, blob); err != nil {
		return fmt.Errorf("backup create: %w", err)
	}
	fmt.Fprintf(stdout, "backup: %s (%d bytes)\n", file, len(blob))
	if !*toNode {
		return nil
	}
	nodeID, err := c.Nodes().Owned()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := c.Nodes().Dial(cctx, nodeID); err != nil {
		return err
	}
	pid, _ := peer.Decode(nodeID)
	lookup := client.BackupLookupID(pass, nodeID)
	err = c.UseIdentity(func(h host.Host, key ed25519.PrivateKey) error {
		return owner.PutBackup(cctx, h, pid, key, lookup, blob)
	})
	if err != nil {
		return fmt.Errorf("backup create: keep on node %s: %w", nodeID, err)
	}
	fmt.Fprintf(stdout, "node:   %s\n", nodeID)
	return nil
}

func cmdBackupRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("backup restore", stderr)
	passFile := o.fs.String("passphrase-file", "", "read the passphrase from this file (- for stdin); default $"+envPassphrase)
	from := o.fs.String("node", "", "fetch the backup from this home node: its multiaddr with /p2p/PEER-ID, or its pairing URI")
	pos, err := o.positional(args, 0, 1, "FILE | --node MULTIADDR|URI [--passphrase-file FILE]")
	if err != nil {
		return err
	}
	if (len(pos) == 1) == (*from != "") {
		return usageErr("usage: redpanda backup restore FILE | --node MULTIADDR|URI (one of them)")
	}
	pass, err := passphrase(*passFile, os.Stdin)
	if err != nil {
		return err
	}
	var blob []byte
	if len(pos) == 1 {
		if blob, err = os.ReadFile(pos[0]); err != nil {
			return fmt.Errorf("backup restore: %w", err)
		}
	} else if blob, err = fetchFromNode(ctx, *from, pass); err != nil {
		return err
	}
	if err := client.Restore(*o.home, pass, blob); err != nil {
		return err
	}
	c, err := o.open(false)
	if err != nil {
		return err
	}
	defer c.Close()
	chs, _ := c.Channels().List()
	fmt.Fprintf(stdout, "identity: %s\nchannels: %d\nhome:     %s\n", c.ID(), len(chs), *o.home)
	return nil
}

// fetchFromNode asks a node for the blob under the passphrase's lookup ID
// from a throwaway host: the new phone has no identity yet.
func fetchFromNode(ctx context.Context, addr, pass string) ([]byte, error) {
	var ai peer.AddrInfo
	if u, err := provisioning.ParseURI(addr); err == nil {
		if ai.ID, err = u.PeerID(); err != nil {
			return nil, fmt.Errorf("backup restore: %w", err)
		}
		for _, a := range u.Addrs {
			ai.Addrs = append(ai.Addrs, a.Multiaddr())
		}
	} else {
		ma, err := multiaddr.NewMultiaddr(addr)
		if err != nil {
			return nil, fmt.Errorf("backup restore: --node %q is neither a pairing URI nor a multiaddr: %w", addr, err)
		}
		p, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil {
			return nil, fmt.Errorf("backup restore: --node %q must end in /p2p/PEER-ID: %w", addr, err)
		}
		ai = *p
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		return nil, fmt.Errorf("backup restore: %w", err)
	}
	defer h.Close()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := h.Connect(cctx, ai); err != nil {
		return nil, fmt.Errorf("backup restore: reach node %s: %w", ai.ID, err)
	}
	blob, err := owner.FetchBackup(cctx, h, ai.ID, client.BackupLookupID(pass, ai.ID.String()))
	if errors.Is(err, owner.ErrNoBackup) {
		return nil, fmt.Errorf("backup restore: %w (wrong passphrase, or no backup was kept on this node)", err)
	}
	return blob, err
}

// writeFileAtomic writes a 0600 file through a temporary name, so a crash
// never leaves a half-written backup under the real name.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
