package client

// Backups seals the client's state into a backup a passphrase opens
// (Restore is its other half; docs/BACKUP.md). Get one with
// Client.Backups.
type Backups struct{ c *Client }

// Backups seals the client's backups (facade_backups.go).
func (c *Client) Backups() Backups { return Backups{c} }

// Seal seals this client's identity, channels, tickets, nodes and
// pending invitations under passphrase with DefaultBackupParams.
func (b Backups) Seal(passphrase string) ([]byte, error) {
	return b.c.backup(passphrase)
}

// SealWith is Seal with explicit Argon2id parameters.
func (b Backups) SealWith(passphrase string, p BackupParams) ([]byte, error) {
	return b.c.backupWith(passphrase, p)
}
