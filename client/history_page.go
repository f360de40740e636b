package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// errPageFull stops a history walk once the page is complete.
var errPageFull = errors.New("client: history page full")

// HistoryBefore returns up to limit text messages of the named channel
// that come before the message with ID before in the history's order
// (timestamp, then ID), oldest first, each with its receipts; before ""
// means from the newest. A chat screen pages back by passing the ID of
// the oldest message it shows; an empty page means there is nothing
// older. A before that is not in the channel's history fails with
// ErrUnknownMessage. limit must be positive.
func (c *Client) HistoryBefore(name, before string, limit int) ([]Message, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("client.HistoryBefore: limit %d: must be positive", limit)
	}
	cs, err := c.byName(name)
	if err != nil {
		return nil, fmt.Errorf("client.HistoryBefore: %w", err)
	}
	var stop channel.MessageID
	if before != "" {
		if stop, err = channel.ParseMessageID(before); err != nil {
			return nil, fmt.Errorf("client.HistoryBefore: %w: %q: %v", ErrUnknownMessage, before, err)
		}
	}
	chID := cs.key.ID().String()
	self := c.ID()
	var page []Message // a window of the last limit messages before stop
	found := before == ""
	err = c.db.Meta(historyPrefix + chID).ForEach(func(k, v []byte) error {
		if len(k) != 8+len(channel.MessageID{}) {
			return nil
		}
		var id channel.MessageID
		copy(id[:], k[8:])
		if before != "" && id == stop {
			found = true
			return errPageFull
		}
		var r historyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("history record: %w", err)
		}
		ts := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
		page = append(page, Message{ID: id.String(), Channel: name, ChannelID: chID, Author: r.Author,
			Mine: r.Author == self, Text: r.Text, Timestamp: time.UnixMilli(ts)})
		if len(page) > 2*limit {
			page = append(page[:0], page[len(page)-limit:]...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, fmt.Errorf("client.HistoryBefore: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("client.HistoryBefore: %w: %s is not in the history of %q", ErrUnknownMessage, before, name)
	}
	if len(page) > limit {
		page = page[len(page)-limit:]
	}
	for i := range page {
		page[i].DeliveredTo = c.receiptsFor(page[i].ID)
	}
	return page, nil
}

// ErrUnknownMessage: no message of that ID in the channel's history.
var ErrUnknownMessage = errors.New("client: unknown message")
