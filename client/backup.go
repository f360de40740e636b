package client

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/redpanda-p2p/homenode/node/store"
)

// Backups (paper §4.8, v2 crypto): the identity, channels, ticket chains,
// known nodes and pending invitations, sealed with XChaCha20-Poly1305 under
// a key stretched from a passphrase by Argon2id. The blob is self-contained
// (it carries its Argon2id parameters and salt) so it can be restored on a
// new phone from a file or from the owner's home node. docs/BACKUP.md has
// the format, the parameters and the threat model.

// BackupParams are the Argon2id cost parameters of a backup.
type BackupParams struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultBackupParams: 64 MiB, 3 passes, 2 lanes — about a second on a
// phone-class CPU, within what a 1 GB phone can spare (docs/BACKUP.md).
var DefaultBackupParams = BackupParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds a restore accepts, so a blob from an untrusted node cannot make
// the phone spend minutes or gigabytes before the AEAD says no.
const (
	maxBackupTime    = 16
	maxBackupMemory  = 256 << 10 // KiB
	minBackupMemory  = 8         // argon2 needs 8 KiB per lane at least
	maxBackupThreads = 16
	MinPassphrase    = 10 // characters; see docs/BACKUP.md
	// MaxBackup bounds a blob; the home node refuses larger ones too.
	MaxBackup = 1 << 20
)

const (
	backupMagic      = "RPBK"
	backupVersion    = 1
	backupSaltSize   = 16
	backupCheckSize  = 8
	backupHeaderSize = 4 + 1 + 4 + 4 + 1 + backupSaltSize + backupCheckSize + chacha20poly1305.NonceSizeX
	labelBackupKey   = "redpanda/v2/backup-key"
	labelBackupCheck = "redpanda/v2/backup-check"
	labelBackupLook  = "redpanda/v2/backup-lookup"
)

// Buckets a backup carries; the message store and history are not in it
// (the relay window resyncs; blocks carry older history).
var backupBuckets = []string{bucketSelf, bucketChannels, bucketNodes, bucketInvites}

// Backup errors.
var (
	// ErrWrongPassphrase: the passphrase does not open this backup.
	ErrWrongPassphrase = errors.New("client: wrong backup passphrase")
	// ErrCorruptBackup: the blob is damaged, truncated, or not a backup.
	ErrCorruptBackup = errors.New("client: backup is corrupt")
	// ErrWeakPassphrase: shorter than MinPassphrase.
	ErrWeakPassphrase = errors.New("client: backup passphrase too short")
	// ErrHomeNotEmpty: a restore target that already holds an identity.
	ErrHomeNotEmpty = errors.New("client: home already holds an identity")
)

type backupRecord struct {
	Bucket string `json:"b"`
	Key    []byte `json:"k"`
	Value  []byte `json:"v"`
}

type backupPayload struct {
	Created time.Time      `json:"created"`
	Records []backupRecord `json:"records"`
}

// backup implements Backups.Seal.
func (c *Client) backup(passphrase string) ([]byte, error) {
	return c.backupWith(passphrase, DefaultBackupParams)
}

// backupWith implements Backups.SealWith.
func (c *Client) backupWith(passphrase string, p BackupParams) ([]byte, error) {
	if len([]rune(passphrase)) < MinPassphrase {
		return nil, fmt.Errorf("client.Backups.Seal: %w: use at least %d characters (several words)", ErrWeakPassphrase, MinPassphrase)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("client.Backups.Seal: %w", err)
	}
	pl := backupPayload{Created: c.cfg.Now().UTC()}
	for _, b := range backupBuckets {
		err := c.db.Meta(b).ForEach(func(k, v []byte) error {
			pl.Records = append(pl.Records, backupRecord{Bucket: b, Key: k, Value: v})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("client.Backups.Seal: %s: %w", b, err)
		}
	}
	plain, _ := json.Marshal(pl)
	blob, err := sealBackup(plain, passphrase, p)
	if err != nil {
		return nil, fmt.Errorf("client.Backups.Seal: %w", err)
	}
	if len(blob) > MaxBackup {
		return nil, fmt.Errorf("client.Backups.Seal: %d bytes, over the %d-byte limit", len(blob), MaxBackup)
	}
	return blob, nil
}

func (p BackupParams) check() error {
	if p.Time < 1 || p.Time > maxBackupTime || p.MemoryKiB > maxBackupMemory || p.Threads < 1 || p.Threads > maxBackupThreads ||
		p.MemoryKiB < minBackupMemory*uint32(p.Threads) {
		return fmt.Errorf("argon2id parameters t=%d m=%d KiB p=%d out of bounds (t 1..%d, m up to %d KiB, p 1..%d)",
			p.Time, p.MemoryKiB, p.Threads, maxBackupTime, maxBackupMemory, maxBackupThreads)
	}
	return nil
}

// backupKeys stretches the passphrase and splits it into the AEAD key and
// a short check value that tells a wrong passphrase from a damaged blob.
func backupKeys(passphrase string, salt []byte, p BackupParams) (key, check []byte) {
	master := argon2.IDKey([]byte(passphrase), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	key, _ = hkdf.Key(sha256.New, master, nil, labelBackupKey, chacha20poly1305.KeySize)
	check, _ = hkdf.Key(sha256.New, master, nil, labelBackupCheck, backupCheckSize)
	return key, check
}

func sealBackup(plain []byte, passphrase string, p BackupParams) ([]byte, error) {
	salt := make([]byte, backupSaltSize)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	key, check := backupKeys(passphrase, salt, p)
	aead, _ := chacha20poly1305.NewX(key)
	h := []byte(backupMagic)
	h = append(h, backupVersion)
	h = binary.BigEndian.AppendUint32(h, p.Time)
	h = binary.BigEndian.AppendUint32(h, p.MemoryKiB)
	h = append(h, p.Threads)
	h = append(h, salt...)
	h = append(h, check...)
	h = append(h, nonce...)
	return aead.Seal(h, nonce, plain, h), nil // the header is the AD
}

// parseBackupHeader checks the fixed part of a blob without any key work.
func parseBackupHeader(blob []byte) (p BackupParams, salt, check, nonce []byte, err error) {
	if len(blob) < backupHeaderSize+chacha20poly1305.Overhead {
		return p, nil, nil, nil, fmt.Errorf("%w: %d bytes, shorter than any backup", ErrCorruptBackup, len(blob))
	}
	if len(blob) > MaxBackup {
		return p, nil, nil, nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrCorruptBackup, len(blob), MaxBackup)
	}
	if string(blob[:4]) != backupMagic {
		return p, nil, nil, nil, fmt.Errorf("%w: not a redpanda backup (no %q header)", ErrCorruptBackup, backupMagic)
	}
	if blob[4] != backupVersion {
		return p, nil, nil, nil, fmt.Errorf("%w: backup format %d, this client reads %d", ErrCorruptBackup, blob[4], backupVersion)
	}
	p = BackupParams{Time: binary.BigEndian.Uint32(blob[5:]), MemoryKiB: binary.BigEndian.Uint32(blob[9:]), Threads: blob[13]}
	if err := p.check(); err != nil {
		return p, nil, nil, nil, fmt.Errorf("%w: %v", ErrCorruptBackup, err)
	}
	o := 14
	salt, o = blob[o:o+backupSaltSize], o+backupSaltSize
	check, o = blob[o:o+backupCheckSize], o+backupCheckSize
	nonce = blob[o : o+chacha20poly1305.NonceSizeX]
	return p, salt, check, nonce, nil
}

// openBackup decrypts and decodes a blob.
func openBackup(blob []byte, passphrase string) (*backupPayload, error) {
	p, salt, check, nonce, err := parseBackupHeader(blob)
	if err != nil {
		return nil, err
	}
	key, want := backupKeys(passphrase, salt, p)
	if subtle.ConstantTimeCompare(check, want) != 1 {
		return nil, ErrWrongPassphrase
	}
	aead, _ := chacha20poly1305.NewX(key)
	plain, err := aead.Open(nil, nonce, blob[backupHeaderSize:], blob[:backupHeaderSize])
	if err != nil {
		return nil, fmt.Errorf("%w: the passphrase is right but the contents were changed or damaged", ErrCorruptBackup)
	}
	var pl backupPayload
	if err := json.Unmarshal(plain, &pl); err != nil {
		return nil, fmt.Errorf("%w: contents: %v", ErrCorruptBackup, err)
	}
	known := map[string]bool{}
	for _, b := range backupBuckets {
		known[b] = true
	}
	hasIdentity := false
	for _, r := range pl.Records {
		if !known[r.Bucket] || len(r.Key) == 0 {
			return nil, fmt.Errorf("%w: record in bucket %q", ErrCorruptBackup, r.Bucket)
		}
		hasIdentity = hasIdentity || (r.Bucket == bucketSelf && bytes.Equal(r.Key, keyIdentity))
	}
	if !hasIdentity {
		return nil, fmt.Errorf("%w: it holds no identity", ErrCorruptBackup)
	}
	return &pl, nil
}

// Restore writes the backup blob into home, which must not hold an
// identity yet; afterwards Open(home) is the backed-up client. Nothing is
// written unless the blob opens with passphrase.
func Restore(home, passphrase string, blob []byte) error {
	pl, err := openBackup(blob, passphrase)
	if err != nil {
		return fmt.Errorf("client.Restore: %w", err)
	}
	path := filepath.Join(home, StoreFile)
	if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("client.Restore: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("client.Restore: %w", err)
	}
	db, err := store.Open(path, store.Options{LockTimeout: DefaultLockTimeout})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("client.Restore: %w: %s", ErrLocked, lockHolder(home))
		}
		return fmt.Errorf("client.Restore: %w", err)
	}
	defer db.Close()
	if _, err := db.Meta(bucketSelf).Get(keyIdentity); err == nil {
		return fmt.Errorf("client.Restore: %w: %s (restore into a new --home)", ErrHomeNotEmpty, home)
	}
	for _, r := range pl.Records {
		if err := db.Meta(r.Bucket).Put(r.Key, r.Value); err != nil {
			return fmt.Errorf("client.Restore: %w", err)
		}
	}
	return nil
}

// BackupLookupID is what a new phone asks the home node for when it has
// only the node's address and the passphrase: Argon2id of the passphrase
// salted with the node's peer ID, so the node can hand the blob only to
// someone who knows the passphrase, and the ID is useless at other nodes.
func BackupLookupID(passphrase, nodePeerID string) []byte {
	salt := sha256.Sum256([]byte(labelBackupLook + "\x00" + nodePeerID))
	p := DefaultBackupParams
	return argon2.IDKey([]byte(passphrase), salt[:backupSaltSize], p.Time, p.MemoryKiB, p.Threads, 32)
}
