package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mr-tron/base58"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
	"github.com/redpanda-p2p/homenode/node/hint"
	"github.com/redpanda-p2p/homenode/node/store"
)

// Multi-device (paper §4.7, docs/DEVICES.md). Every device of an identity
// holds the identity seed and the master channel's full key; channel
// changes and device joins and leaves travel as control messages in the
// master channel. The home node is a device of a lesser kind: it holds
// only a read-only key of the identity's node channel, in which the
// devices post the list of channel IDs to serve, never a read key.
const (
	// MasterChannel and NodeChannel are the local names of the two
	// channels; the ~ keeps them apart from user names by convention.
	MasterChannel = "~master"
	NodeChannel   = "~node"
	// DefaultLinkLifetime is how long a device link string is valid.
	DefaultLinkLifetime = 10 * time.Minute

	linkPrefix    = "rpdev"
	linkVersion   = 1
	linkPayload   = 1 + 32 + 32 + 8 // version, seed, master secret, expiry
	linkChecksum  = 4
	bucketDevices = "devices" // peer ID -> deviceRecord
	// maxControlBytes bounds a master-channel control body: a state
	// message fills at most one envelope.
	maxControlBytes = channel.MaxBody
)

// Sentinel errors of the device layer.
var (
	// ErrBadLink: a device link string that is malformed, tampered with
	// or of another version.
	ErrBadLink = errors.New("client: bad device link")
	// ErrLinkExpired: the link string is past its lifetime; make a new one.
	ErrLinkExpired = errors.New("client: device link expired")
	// ErrNoMaster: this client has no master channel yet (link a device
	// first).
	ErrNoMaster = errors.New("client: no master channel")
)

// Device is one device of this identity, as the master channel told it.
type Device struct {
	Peer   string    // libp2p peer ID
	Name   string    // what the device calls itself
	Joined time.Time //
	Self   bool      // this device
}

type deviceRecord struct {
	Name   string    `json:"name"`
	Joined time.Time `json:"joined"`
}

// deviceControl is a control message in the master channel.
type deviceControl struct {
	Op    string      `json:"op"`              // device-join, device-leave, state; channel-add, channel-del (before state)
	From  string      `json:"from"`            // posting device's peer ID
	Peer  string      `json:"peer,omitempty"`  // device ops
	Name  string      `json:"name,omitempty"`  // device or channel name
	Key   string      `json:"key,omitempty"`   // channel-add: the key string
	Items []stateItem `json:"items,omitempty"` // state: changed items (devicestate.go)
	Snap  *snapPart   `json:"snap,omitempty"`  // state: part of a snapshot
}

const opState = "state"

func derivedKey(seed []byte, label string) *channel.Key {
	s := sha256.Sum256(append([]byte("redpanda/v2/"+label+"\x00"), seed...))
	k, _ := channel.KeyFromSecret(s[:])
	return k
}

// EncodeLink makes a device link string: identity seed, master secret
// and expiry, versioned and checksummed, and a node hint (the identity's
// home nodes; may be empty). It is a secret.
func encodeLink(seed, master []byte, expires time.Time, hint []byte) string {
	p := make([]byte, 0, linkPayload+len(hint)+linkChecksum)
	p = append(p, linkVersion)
	p = append(p, seed...)
	p = append(p, master...)
	p = binary.BigEndian.AppendUint64(p, uint64(expires.Unix()))
	p = append(p, hint...)
	return linkPrefix + base58.Encode(append(p, linkSum(p)...))
}

func linkSum(p []byte) []byte {
	a := sha256.Sum256(append([]byte(linkPrefix), p...))
	b := sha256.Sum256(a[:])
	return b[:linkChecksum]
}

// decodeLink parses a link string and checks its checksum, version and
// expiry.
func decodeLink(s string, now time.Time) (seed, master []byte, err error) {
	seed, master, _, err = decodeLinkHint(s, now)
	return seed, master, err
}

// decodeLinkHint is decodeLink that also returns the link's node hint
// (nil when none; at most channel.MaxHintBytes, unread).
func decodeLinkHint(s string, now time.Time) (seed, master, hint []byte, err error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, linkPrefix) || len(s) > 400 {
		return nil, nil, nil, fmt.Errorf("%w: not a %s… string", ErrBadLink, linkPrefix)
	}
	b, err := base58.Decode(s[len(linkPrefix):])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBadLink, err)
	}
	if len(b) < linkPayload+linkChecksum || len(b) > linkPayload+channel.MaxHintBytes+linkChecksum {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes, want %d to %d (truncated?)", ErrBadLink, len(b), linkPayload+linkChecksum, linkPayload+channel.MaxHintBytes+linkChecksum)
	}
	signed := b[:len(b)-linkChecksum]
	if string(linkSum(signed)) != string(b[len(b)-linkChecksum:]) {
		return nil, nil, nil, fmt.Errorf("%w: checksum mismatch (mistyped or tampered)", ErrBadLink)
	}
	p := signed[:linkPayload]
	if len(signed) > linkPayload {
		hint = signed[linkPayload:]
	}
	if p[0] != linkVersion {
		return nil, nil, nil, fmt.Errorf("%w: version %d, this client reads %d", ErrBadLink, p[0], linkVersion)
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(p[65:])), 0)
	if now.After(exp) {
		return nil, nil, nil, fmt.Errorf("%w at %s", ErrLinkExpired, exp.UTC().Format(time.RFC3339))
	}
	return p[1:33], p[33:65], hint, nil
}

// linkDevice implements Devices.Link.
func (c *Client) linkDevice(ctx context.Context, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = DefaultLinkLifetime
	}
	master, err := c.ensureMaster(ctx)
	if err != nil {
		return "", fmt.Errorf("client.Devices.Link: %w", err)
	}
	h := c.homeHint(hint.MaxNodes, shareEntries, anyNode)
	link := encodeLink(c.self.Seed(), master.key.Secret(), c.cfg.Now().Add(ttl), h)
	if err := c.postSnapshot(linkTag(link)); err != nil {
		return "", fmt.Errorf("client.Devices.Link: %w", err)
	}
	return link, nil
}

// linkTag names the snapshot posted for a link string, so the device
// that joins with it knows which snapshot to wait for. A hash: the link
// is a secret (though only the identity's devices read the master
// channel).
func linkTag(link string) string {
	h := sha256.Sum256([]byte("redpanda/v2/link-tag\x00" + strings.TrimSpace(link)))
	return hex.EncodeToString(h[:8])
}

// ensureMaster adds the master and node channels when missing and
// announces this device in the master channel. The device that makes
// them (or links others, or pairs a node) speaks for the identity's state.
func (c *Client) ensureMaster(context.Context) (*chanState, error) {
	if cs, err := c.byName(MasterChannel); err == nil {
		c.stateKnown()
		return cs, nil
	}
	k := derivedKey(c.self.Seed(), "master-channel")
	cs, err := c.setupMaster(k, "first device")
	if err == nil {
		c.stateKnown()
	}
	return cs, err
}

func (c *Client) setupMaster(k *channel.Key, name string) (*chanState, error) {
	if err := c.addChannel(MasterChannel, k); err != nil && !errors.Is(err, ErrChannelExists) {
		return nil, err
	}
	if err := c.addChannel(NodeChannel, derivedKey(c.self.Seed(), "node-channel")); err != nil && !errors.Is(err, ErrChannelExists) {
		return nil, err
	}
	cs, err := c.byName(MasterChannel)
	if err != nil {
		return nil, err
	}
	c.recordDevice(c.h.ID().String(), name)
	c.postDevice(deviceControl{Op: "device-join", Peer: c.h.ID().String(), Name: name})
	c.postServeList()
	return cs, nil
}

// JoinDevice makes a new device of the identity in link, in the empty
// home cfg.Home, opens it, adds the nodes the link's hint names and
// announces the device in the master channel. The identity's channels,
// nodes and tickets arrive through the master channel once the device is
// connected (Connect, then Devices.WaitState).
func JoinDevice(ctx context.Context, cfg Config, link, name string) (*Client, error) {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	seed, master, h, err := decodeLinkHint(link, now())
	if err != nil {
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	mk, err := channel.KeyFromSecret(master)
	if err != nil {
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	if err := seedHome(cfg.Home, seed); err != nil {
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	cfg.Create = true
	c, err := Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	if name == "" {
		name = "device"
	}
	if err := c.joinedWith(link); err != nil {
		c.Close()
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	// The identity's home nodes, from the link: this device registers
	// there too.
	if nodes, err := hint.Decode(h); err == nil {
		c.addHintedNodes(nodes, "link")
	} else if len(h) > 0 {
		c.log.Warn("device link: node hint ignored", "err", err)
	}
	if _, err := c.setupMaster(mk, name); err != nil {
		c.Close()
		return nil, fmt.Errorf("client.JoinDevice: %w", err)
	}
	return c, nil
}

// seedHome writes an identity seed into a home that has none.
func seedHome(home string, seed []byte) error {
	if home == "" {
		return errors.New("no home directory")
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	db, err := store.Open(filepath.Join(home, StoreFile), store.Options{LockTimeout: DefaultLockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	m := db.Meta(bucketSelf)
	if _, err := m.Get(keyIdentity); err == nil {
		return fmt.Errorf("%s already holds an identity; use an empty home for a new device", home)
	}
	if _, err := channel.IdentityFromSeed(seed); err != nil {
		return err
	}
	return m.Put(keyIdentity, seed)
}

// devices implements Devices.List.
func (c *Client) devices() ([]Device, error) {
	var out []Device
	self := c.h.ID().String()
	err := c.db.Meta(bucketDevices).ForEach(func(k, v []byte) error {
		var r deviceRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("device record %q: %w", k, err)
		}
		out = append(out, Device{Peer: string(k), Name: r.Name, Joined: r.Joined, Self: string(k) == self})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Joined.Before(out[j].Joined) })
	if err != nil {
		return nil, fmt.Errorf("client.Devices.List: %w", err)
	}
	return out, nil
}

// unlinkDevice implements Devices.Unlink.
func (c *Client) unlinkDevice(ctx context.Context) error {
	if _, err := c.byName(MasterChannel); err != nil {
		return fmt.Errorf("client.Devices.Unlink: %w", ErrNoMaster)
	}
	c.postDevice(deviceControl{Op: "device-leave", Peer: c.h.ID().String()})
	_ = c.db.Meta(bucketDevices).Delete([]byte(c.h.ID().String()))
	return nil
}

// homeNodeKey implements Nodes.HomeKey.
func (c *Client) homeNodeKey(ctx context.Context) (string, error) {
	if _, err := c.ensureMaster(ctx); err != nil {
		return "", fmt.Errorf("client.Nodes.HomeKey: %w", err)
	}
	return c.shareChannel(NodeChannel, "read")
}

// nodeChannelKey implements Nodes.ChannelKey.
func (c *Client) nodeChannelKey() (string, error) {
	if _, err := c.byName(MasterChannel); err != nil {
		return "", fmt.Errorf("client.Nodes.ChannelKey: %w", ErrNoMaster)
	}
	return c.shareChannel(NodeChannel, "read")
}

func (c *Client) recordDevice(p, name string) {
	rec, _ := json.Marshal(deviceRecord{Name: name, Joined: c.cfg.Now().UTC()})
	if err := c.db.Meta(bucketDevices).Put([]byte(p), rec); err != nil {
		c.log.Warn("device record", "err", err)
	}
}

// postDevice posts a device op in the master channel, through the
// outbox.
func (c *Client) postDevice(dc deviceControl) {
	cs, err := c.byName(MasterChannel)
	if err != nil {
		return
	}
	dc.From = c.h.ID().String()
	b, _ := json.Marshal(dc)
	if _, err := c.postLater(cs, channel.KindControl, append([]byte{control.Device}, b...)); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("master channel: not stored", "op", dc.Op, "err", err)
	}
}

// postServeList posts, in the node channel, every channel ID of this
// identity (the master channel's included, the node channel's not: the
// node serves that one by itself).
func (c *Client) postServeList() {
	cs, err := c.byName(NodeChannel)
	if err != nil {
		return
	}
	var l control.ServeList
	for _, id := range c.channelIDs() {
		if id != cs.key.ID() {
			l.Channels = append(l.Channels, id.String())
		}
	}
	l.Control = c.controlChannelIDs()
	l.At = c.cfg.Now().UnixMilli()
	if _, err := c.postLater(cs, channel.KindControl, control.EncodeServeList(l)); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("node channel: not stored", "err", err)
	}
}

// decodeDeviceControl parses a master-channel control body.
func decodeDeviceControl(b []byte) (deviceControl, error) {
	var dc deviceControl
	if len(b) < 2 || b[0] != control.Device || len(b) > maxControlBytes {
		return dc, fmt.Errorf("client: not a device control message (%d bytes)", len(b))
	}
	if err := json.Unmarshal(b[1:], &dc); err != nil {
		return dc, fmt.Errorf("client: device control: %w", err)
	}
	switch dc.Op {
	case "device-join", "device-leave":
		if dc.Peer == "" {
			return dc, fmt.Errorf("client: device control %s without a peer", dc.Op)
		}
	case opState:
		if len(dc.Items) > maxStateItems || (len(dc.Items) == 0 && dc.Snap == nil) {
			return dc, fmt.Errorf("client: device state of %d items (1 to %d)", len(dc.Items), maxStateItems)
		}
		for _, it := range dc.Items {
			if err := it.check(); err != nil {
				return dc, fmt.Errorf("client: device state: %w", err)
			}
		}
		if s := dc.Snap; s != nil && (s.ID == "" || len(s.ID) > 32 || len(s.Link) > 32 || s.Parts < 1 || s.Parts > maxSnapParts || s.Part < 0 || s.Part >= s.Parts) {
			return dc, fmt.Errorf("client: device state: snapshot part %d of %d", s.Part, s.Parts)
		}
	case "channel-add":
		if _, err := channel.ParseKey(dc.Key); err != nil {
			return dc, fmt.Errorf("client: device control: %w", err)
		}
		fallthrough
	case "channel-del":
		if err := checkName(dc.Name); err != nil {
			return dc, fmt.Errorf("client: device control: %w", err)
		}
	default:
		return dc, fmt.Errorf("client: device control: unknown op %q", dc.Op)
	}
	return dc, nil
}

// handleDeviceControl applies a master-channel control message
// (control.Device) from another device of this identity; elsewhere the
// tag means nothing. Called under procMu (control.go).
func (c *Client) handleDeviceControl(cs *chanState, m *channel.Message) {
	if cs.name != MasterChannel || m.Author != c.self.Public() {
		return
	}
	dc, err := decodeDeviceControl(m.Body)
	if err != nil {
		c.log.Warn("master channel: bad control ignored", "err", err)
		return
	}
	if dc.From == c.h.ID().String() {
		return
	}
	switch dc.Op {
	case "device-join":
		c.recordDevice(dc.Peer, dc.Name)
	case "device-leave":
		_ = c.db.Meta(bucketDevices).Delete([]byte(dc.Peer))
	case opState:
		c.applyState(dc, m)
	case "channel-add", "channel-del":
		// Before versioned state: the op as an item versioned by its
		// envelope's timestamp.
		it := stateItem{Kind: itemChannel, At: m.Timestamp.UnixMilli(), By: dc.From, Name: dc.Name}
		if dc.Op == "channel-add" {
			k, _ := channel.ParseKey(dc.Key)
			it.ID, it.Key = k.ID().String(), k.String()
		} else if dcs, err := c.byName(dc.Name); err == nil {
			it.ID, it.Gone = dcs.key.ID().String(), goneLeft
		} else {
			return
		}
		if err := it.check(); err == nil {
			c.applyState(deviceControl{Op: opState, From: dc.From, Items: []stateItem{it}}, m)
		}
	}
}
