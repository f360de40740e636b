package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Cover traffic (paper §4.6): friends exchange dust channels, and each
// client posts dust (KindDust) to them at random intervals. Dust is
// sealed like text and padded to the same size buckets, so on the wire
// it is a message like any other; readers drop it after opening.
const (
	// DustPrefix starts the local name of a dust channel.
	DustPrefix = "~dust-"
	// DefaultDustInterval is the mean time between dust messages.
	DefaultDustInterval = 10 * time.Minute
	// maxDustBody keeps dust in the smallest bucket, where most text is.
	maxDustBody = 150
)

// ErrCoverOff: cover traffic is disabled, or the connection is metered.
var ErrCoverOff = errors.New("client: cover traffic off")

// CoverConfig says whether and how often to send dust.
type CoverConfig struct {
	Enabled bool
	// Metered connections send no dust whatever Enabled says.
	Metered bool
	// MeanInterval between dust messages (exponentially distributed, so
	// their times say nothing); default DefaultDustInterval.
	MeanInterval time.Duration
}

// createDustChannel implements Cover.CreateChannel.
func (c *Client) createDustChannel(name string) (string, error) {
	return c.createChannel(DustPrefix + name)
}

// joinDustChannel implements Cover.JoinChannel.
func (c *Client) joinDustChannel(name, key string) error {
	_, err := c.joinChannel(DustPrefix+name, key)
	return err
}

func (c *Client) dustChannels() []*chanState {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*chanState
	for _, cs := range c.chans {
		if strings.HasPrefix(cs.name, DustPrefix) && cs.key.CanWrite() {
			out = append(out, cs)
		}
	}
	return out
}

// sendDust implements Cover.Send.
func (c *Client) sendDust(ctx context.Context) (SendResult, error) {
	chs := c.dustChannels()
	if len(chs) == 0 {
		return SendResult{}, fmt.Errorf("client.Cover.Send: %w: no dust channel", ErrUnknownChannel)
	}
	body := make([]byte, 1+mrand.IntN(maxDustBody))
	_, _ = rand.Read(body)
	return c.post(ctx, chs[mrand.IntN(len(chs))], channel.KindDust, body)
}

// runCoverTraffic implements Cover.Run.
func (c *Client) runCoverTraffic(ctx context.Context, cfg CoverConfig) error {
	if !cfg.Enabled || cfg.Metered {
		return ErrCoverOff
	}
	if cfg.MeanInterval <= 0 {
		cfg.MeanInterval = DefaultDustInterval
	}
	for {
		wait := time.Duration(-math.Log(1-mrand.Float64()) * float64(cfg.MeanInterval))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrClosed
		case <-time.After(wait):
		}
		if _, err := c.sendDust(ctx); err != nil && !errors.Is(err, ErrNotDelivered) {
			c.log.Debug("dust not sent", "err", err)
		}
	}
}

// controlChannelIDs are this client's channels that carry no person's
// words: the master channel and the dust channels. The serve list names
// them for the home node (docs/DEVICES.md), which counts them apart.
func (c *Client) controlChannelIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, cs := range c.chans {
		if cs.name == MasterChannel || strings.HasPrefix(cs.name, DustPrefix) {
			out = append(out, id.String())
		}
	}
	sort.Strings(out)
	return out
}
