package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// A block (paper §4.2) is a member's signed snapshot of a channel's
// history, posted as KindBlock content so that history older than the
// relay window reaches members and devices that joined later.
//
// Encoding (big endian):
//
//	block := "RPB1" | channel(32) | creator(32) | count(4) | entry* | hash(32) | sig(64)
//	entry := message ID(32) | timestamp ms(8) | author(32) | text length(4) | text
//
// hash is SHA-256 over everything before it; sig is the creator's
// identity signature over hash (domain "redpanda/v2/block"). The entries
// are the creator's record of what others wrote: the original authors'
// signatures are not carried, so a block is as trustworthy as its
// creator, who is a member and signs it.
//
// A block larger than one envelope travels in chunks:
//
//	chunk := block hash(32) | index(2) | total(2) | data
const (
	blockMagic    = "RPB1"
	blockDomain   = "redpanda/v2/block\x00"
	chunkHeader   = 32 + 2 + 2
	entryHeader   = 32 + 8 + 32 + 4
	maxChunkData  = channel.MaxBody - chunkHeader
	maxChunks     = 256 // 16 MiB of history per block
	maxBlockBytes = maxChunks * maxChunkData
	bucketBlocks  = "blockparts" // hash|index -> chunk data, until complete
)

// ErrBadBlock: a block (or one of its chunks) that does not decode, whose
// hash does not match its contents, or whose signature is wrong.
var ErrBadBlock = errors.New("client: bad block")

// BlockEntry is one message in a block.
type BlockEntry struct {
	ID        channel.MessageID
	Timestamp int64 // ms
	Author    channel.IdentityKey
	Text      string
}

// Block is a decoded, verified block.
type Block struct {
	Channel channel.ID
	Creator channel.IdentityKey
	Entries []BlockEntry
	Hash    [32]byte
}

// encodeBlock builds and signs a block.
func encodeBlock(ch channel.ID, creator *channel.Identity, entries []BlockEntry) []byte {
	b := append([]byte(blockMagic), ch[:]...)
	pub := creator.Public()
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
		b = append(b, e.Author[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Text)))
		b = append(b, e.Text...)
	}
	h := sha256.Sum256(b)
	b = append(b, h[:]...)
	return append(b, creator.Sign(blockDomain, h[:])...)
}

// decodeBlock parses and verifies a block: the hash must match the
// contents and the creator's signature the hash.
func decodeBlock(b []byte) (*Block, error) {
	min := len(blockMagic) + 32 + 32 + 4 + 32 + ed25519.SignatureSize
	if len(b) < min || string(b[:4]) != blockMagic {
		return nil, fmt.Errorf("%w: %d bytes, not a block", ErrBadBlock, len(b))
	}
	body := b[:len(b)-32-ed25519.SignatureSize]
	declared := b[len(body) : len(body)+32]
	sig := b[len(body)+32:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], declared) {
		return nil, fmt.Errorf("%w: hash does not match its contents", ErrBadBlock)
	}
	blk := &Block{Hash: sum}
	p := body[4:]
	copy(blk.Channel[:], p)
	copy(blk.Creator[:], p[32:])
	n := binary.BigEndian.Uint32(p[64:])
	p = p[68:]
	if !blk.Creator.Verify(blockDomain, sum[:], sig) {
		return nil, fmt.Errorf("%w: creator's signature does not verify", ErrBadBlock)
	}
	if uint64(n)*entryHeader > uint64(len(p)) {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", ErrBadBlock, n, len(p))
	}
	blk.Entries = make([]BlockEntry, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(p) < entryHeader {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrBadBlock, i)
		}
		var e BlockEntry
		copy(e.ID[:], p)
		e.Timestamp = int64(binary.BigEndian.Uint64(p[32:]))
		copy(e.Author[:], p[40:])
		l := binary.BigEndian.Uint32(p[72:])
		p = p[entryHeader:]
		if uint64(l) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: entry %d text of %d bytes truncated", ErrBadBlock, i, l)
		}
		e.Text = string(p[:l])
		p = p[l:]
		blk.Entries = append(blk.Entries, e)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", ErrBadBlock, len(p))
	}
	return blk, nil
}

// chunkBlock splits an encoded block into chunk bodies.
func chunkBlock(b []byte) [][]byte {
	sum := sha256.Sum256(b)
	total := (len(b) + maxChunkData - 1) / maxChunkData
	out := make([][]byte, 0, total)
	for i := 0; i < total; i++ {
		data := b[i*maxChunkData : min(len(b), (i+1)*maxChunkData)]
		c := append(append(make([]byte, 0, chunkHeader+len(data)), sum[:]...), 0, 0, 0, 0)
		binary.BigEndian.PutUint16(c[32:], uint16(i))
		binary.BigEndian.PutUint16(c[34:], uint16(total))
		out = append(out, append(c, data...))
	}
	return out
}

// BlockResult says what Channels.PostBlock posted.
type BlockResult struct {
	Hash     string // hex: what a reader checks
	Messages int
	Chunks   int
	Sends    []SendResult
}

// postBlock implements Channels.PostBlock.
func (c *Client) postBlock(ctx context.Context, name string) (BlockResult, error) {
	cs, err := c.byName(name)
	if err != nil {
		return BlockResult{}, fmt.Errorf("client.Channels.PostBlock: %w", err)
	}
	if !cs.key.CanWrite() {
		return BlockResult{}, fmt.Errorf("client.Channels.PostBlock: %q: %w", name, ErrCannotWrite)
	}
	ms, err := c.History(name, 0)
	if err != nil {
		return BlockResult{}, fmt.Errorf("client.Channels.PostBlock: %w", err)
	}
	entries := make([]BlockEntry, 0, len(ms))
	for _, m := range ms {
		id, _ := channel.ParseMessageID(m.ID)
		a, err := channel.ParseIdentityKey(m.Author)
		if err != nil {
			continue
		}
		entries = append(entries, BlockEntry{ID: id, Timestamp: m.Timestamp.UnixMilli(), Author: a, Text: m.Text})
	}
	b := encodeBlock(cs.key.ID(), c.self, entries)
	if len(b) > maxBlockBytes {
		return BlockResult{}, fmt.Errorf("client.Channels.PostBlock: history of %d bytes is over the %d-byte block limit", len(b), maxBlockBytes)
	}
	res := BlockResult{Hash: fmt.Sprintf("%x", sha256.Sum256(b[:len(b)-32-ed25519.SignatureSize])), Messages: len(entries)}
	var errs []error
	for _, chunk := range chunkBlock(b) {
		r, err := c.post(ctx, cs, channel.KindBlock, chunk)
		res.Chunks++
		res.Sends = append(res.Sends, r)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("client.Channels.PostBlock: %w", err)
	}
	return res, nil
}

// handleBlockChunk keeps a chunk and, once a block is complete, verifies
// and merges it. Called under procMu.
func (c *Client) handleBlockChunk(cs *chanState, m *channel.Message) {
	if err := c.blockChunk(cs, m.Body); err != nil {
		c.log.Warn("block chunk rejected", "channel", cs.name, "author", m.Author, "err", err)
	}
}

func (c *Client) blockChunk(cs *chanState, chunk []byte) error {
	if len(chunk) <= chunkHeader {
		return fmt.Errorf("%w: chunk of %d bytes", ErrBadBlock, len(chunk))
	}
	idx, total := binary.BigEndian.Uint16(chunk[32:]), binary.BigEndian.Uint16(chunk[34:])
	if total == 0 || total > maxChunks || idx >= total {
		return fmt.Errorf("%w: chunk %d of %d", ErrBadBlock, idx, total)
	}
	parts := c.db.Meta(bucketBlocks)
	prefix := chunk[:32]
	if err := parts.Put(append([]byte{}, chunk[:34]...), chunk[chunkHeader:]); err != nil {
		return err
	}
	var data [][]byte
	for i := uint16(0); i < total; i++ {
		v, err := parts.Get(binary.BigEndian.AppendUint16(append([]byte{}, prefix...), i))
		if errors.Is(err, store.ErrNotFound) {
			return nil // more to come
		}
		if err != nil {
			return err
		}
		data = append(data, v)
	}
	for i := uint16(0); i < total; i++ {
		_ = parts.Delete(binary.BigEndian.AppendUint16(append([]byte{}, prefix...), i))
	}
	whole := bytes.Join(data, nil)
	if sum := sha256.Sum256(whole); !bytes.Equal(sum[:], prefix) {
		return fmt.Errorf("%w: chunks do not add up to the block they name", ErrBadBlock)
	}
	_, err := c.mergeBlock(cs, whole)
	return err
}

// mergeBlock verifies a whole block for cs's channel and adds the
// entries its history lacks. It returns how many were added.
func (c *Client) mergeBlock(cs *chanState, b []byte) (int, error) {
	blk, err := decodeBlock(b)
	if err != nil {
		return 0, err
	}
	if blk.Channel != cs.key.ID() {
		return 0, fmt.Errorf("%w: block of channel %s posted in %s", ErrBadBlock, blk.Channel, cs.key.ID())
	}
	hist := c.db.Meta(historyPrefix + blk.Channel.String())
	added := 0
	for _, e := range blk.Entries {
		k := historyKey(e.Timestamp, e.ID)
		if v, _ := hist.Get(k); v != nil {
			continue
		}
		rec, _ := json.Marshal(historyRecord{Author: e.Author.String(), Text: e.Text})
		if err := hist.Put(k, rec); err != nil {
			return added, fmt.Errorf("client: merge block: %w", err)
		}
		// A live copy arriving later is then not shown twice.
		c.markSeen(e.ID, e.Timestamp)
		added++
	}
	c.log.Info("block merged", "channel", cs.name, "creator", blk.Creator, "entries", len(blk.Entries), "added", added,
		"oldest", oldest(blk.Entries))
	return added, nil
}

func oldest(es []BlockEntry) time.Time {
	if len(es) == 0 {
		return time.Time{}
	}
	return time.UnixMilli(es[0].Timestamp)
}
