package client

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// maxNameLen bounds a channel's local name.
const maxNameLen = 64

// Channel describes one channel the client is in.
type Channel struct {
	Name       string
	ID         string // channel ID, hex
	Capability string // full, read or write
	Joined     time.Time
}

type channelRecord struct {
	Key    string    `json:"key"`
	Joined time.Time `json:"joined"`
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %q (1 to %d bytes)", ErrBadName, name, maxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: %q has a space or an unprintable character", ErrBadName, name)
		}
	}
	return nil
}

func (c *Client) loadChannels() error {
	return c.db.Meta(bucketChannels).ForEach(func(k, v []byte) error {
		var r channelRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("client: channel record %q: %w", k, err)
		}
		key, err := channel.ParseKey(r.Key)
		if err != nil {
			return fmt.Errorf("client: channel record %q: %w", k, err)
		}
		c.chans[key.ID()] = &chanState{name: string(k), key: key}
		return nil
	})
}

// createChannel implements Channels.Create.
func (c *Client) createChannel(name string) (string, error) {
	k, err := channel.NewKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("client.Channels.Create: %w", err)
	}
	if err := c.addChannel(name, k); err != nil {
		return "", fmt.Errorf("client.Channels.Create: %w", err)
	}
	c.channelChanged(channelItem(name, k))
	c.refreshSoon()
	s, err := k.StringWithHint(c.shareHint())
	if err != nil {
		return k.String(), nil
	}
	return s, nil
}

// joinChannel implements Channels.Join.
func (c *Client) joinChannel(name, keyString string) (Channel, error) {
	k, h, err := channel.ParseKeyHint(keyString)
	if err != nil {
		return Channel{}, fmt.Errorf("client.Channels.Join: %w", err)
	}
	if err := c.addChannel(name, k); err != nil {
		return Channel{}, fmt.Errorf("client.Channels.Join: %w", err)
	}
	c.channelChanged(channelItem(name, k))
	c.learnHint(h, "key", k.ID())
	c.refreshSoon()
	return c.channelInfo(name)
}

func (c *Client) addChannel(name string, k *channel.Key) error {
	if err := checkName(name); err != nil {
		return err
	}
	if c.blocked(k.ID()) {
		return fmt.Errorf("%w: %s", ErrBlocked, k.ID())
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	for id, cs := range c.chans {
		if cs.name == name {
			c.mu.Unlock()
			return fmt.Errorf("%w: a channel named %q", ErrChannelExists, name)
		}
		if id == k.ID() {
			c.mu.Unlock()
			return fmt.Errorf("%w: this channel is already here as %q", ErrChannelExists, cs.name)
		}
	}
	c.mu.Unlock()
	rec, _ := json.Marshal(channelRecord{Key: k.String(), Joined: c.cfg.Now().UTC()})
	if err := c.db.Meta(bucketChannels).Put([]byte(name), rec); err != nil {
		return err
	}
	c.mu.Lock()
	c.chans[k.ID()] = &chanState{name: name, key: k}
	c.mu.Unlock()
	c.svc.Want(k.ID())
	return nil
}

// channels implements Channels.List.
func (c *Client) channels() ([]Channel, error) {
	var out []Channel
	err := c.db.Meta(bucketChannels).ForEach(func(k, v []byte) error {
		if internalChannel(string(k)) {
			return nil // the identity's own master and node channels
		}
		ch, err := recordToChannel(string(k), v)
		if err != nil {
			return err
		}
		out = append(out, ch)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// internalChannel reports whether name is one of the identity's own
// channels (master, node), which the person never picks by name.
func internalChannel(name string) bool { return name == MasterChannel || name == NodeChannel }

func recordToChannel(name string, v []byte) (Channel, error) {
	var r channelRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Channel{}, fmt.Errorf("client: channel record %q: %w", name, err)
	}
	k, err := channel.ParseKey(r.Key)
	if err != nil {
		return Channel{}, fmt.Errorf("client: channel record %q: %w", name, err)
	}
	return Channel{Name: name, ID: k.ID().String(), Capability: k.Capability().String(), Joined: r.Joined}, nil
}

// channel implements Channels.Get.
func (c *Client) channel(name string) (Channel, error) {
	ch, err := c.channelInfo(name)
	if err != nil {
		return Channel{}, fmt.Errorf("client.Channels.Get: %w", err)
	}
	return ch, nil
}

func (c *Client) channelInfo(name string) (Channel, error) {
	v, err := c.db.Meta(bucketChannels).Get([]byte(name))
	if errors.Is(err, store.ErrNotFound) {
		return Channel{}, c.unknown(name)
	}
	if err != nil {
		return Channel{}, err
	}
	return recordToChannel(name, v)
}

// unknown is the error for a channel name that is not there; it lists the
// names that are.
func (c *Client) unknown(name string) error {
	c.mu.Lock()
	names := make([]string, 0, len(c.chans))
	for _, cs := range c.chans {
		names = append(names, cs.name)
	}
	c.mu.Unlock()
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%w %q: this client is in no channel yet (create or join one)", ErrUnknownChannel, name)
	}
	return fmt.Errorf("%w %q (channels here: %v)", ErrUnknownChannel, name, names)
}

func (c *Client) byName(name string) (*chanState, error) {
	c.mu.Lock()
	for _, cs := range c.chans {
		if cs.name == name {
			c.mu.Unlock()
			return cs, nil
		}
	}
	c.mu.Unlock()
	return nil, c.unknown(name)
}

// shareChannel implements Channels.Share.
func (c *Client) shareChannel(name, capability string) (string, error) {
	return c.shareChannelKey(name, capability, true)
}

// shareChannelKey implements Channels.ShareKey.
func (c *Client) shareChannelKey(name, capability string, withHint bool) (string, error) {
	cs, err := c.byName(name)
	if err != nil {
		return "", fmt.Errorf("client.Channels.Share: %w", err)
	}
	k := cs.key
	if capability != "" {
		capa, err := channel.ParseCapability(capability)
		if err != nil {
			return "", fmt.Errorf("client.Channels.Share: %w", err)
		}
		if k, err = cs.key.Share(capa); err != nil {
			return "", fmt.Errorf("client.Channels.Share %q: %w", name, err)
		}
	}
	if !withHint {
		return k.String(), nil
	}
	s, err := k.StringWithHint(c.shareHint())
	if err != nil {
		return "", fmt.Errorf("client.Channels.Share %q: %w", name, err)
	}
	return s, nil
}

// leaveChannel implements Channels.Leave.
func (c *Client) leaveChannel(name string) error {
	if err := c.leave(name, goneLeft); err != nil {
		return fmt.Errorf("client.Channels.Leave: %w", err)
	}
	return nil
}

// leave forgets the named channel and tells the other devices it is gone
// (left or blocked).
func (c *Client) leave(name, gone string) error {
	cs, err := c.byName(name)
	if err != nil {
		return err
	}
	if internalChannel(name) {
		return fmt.Errorf("%w: %s is this identity's own", ErrBadName, name)
	}
	if err := c.forgetChannel(cs); err != nil {
		return err
	}
	c.channelChanged(stateItem{Kind: itemChannel, ID: cs.key.ID().String(), Name: name, Gone: gone})
	return nil
}

func (c *Client) channelIDs() []channel.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]channel.ID, 0, len(c.chans))
	for id := range c.chans {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
