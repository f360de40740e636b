package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
	"github.com/redpanda-p2p/homenode/node/routing"
)

// The identity's shared state (docs/DEVICES.md): what every device of an
// identity holds alike — its channels with their keys (and the ones it
// left or blocked), the super nodes it added or paired, the ticket chains
// friends issued to it. Each thing is an item with a version (at, by): at
// is a hybrid logical clock in Unix ms (never behind this device's wall
// clock, always ahead of every version it has seen), by the peer ID of
// the device that made the change. An item replaces the one held for the
// same thing only if its version is newer, so devices converge whatever
// order messages arrive in, two devices changing the same thing at once
// end with the same winner, and a replayed old message cannot undo a
// newer change. Removals stay as tombstones for the same reason.
//
// A device posts each change as an item in the master channel; the
// linking device posts a snapshot of every item when it makes a link
// string, and every device posts one again when its last is older than
// snapshotRefresh, so a device offline for longer than the nodes keep
// messages (7 days) still catches up.
const (
	bucketDevState = "devstate" // kind "/" id -> stateItem JSON; keyClock, keySnapshot*

	itemChannel = "c" // id: channel ID hex
	itemNode    = "n" // id: node peer ID
	itemTicket  = "t" // id: identity of the node owner the chain starts at

	goneLeft    = "left"    // channel: not a member (and not blocked)
	goneBlocked = "blocked" // channel: blocked (spam)
	goneRemoved = "removed" // node: removed

	// maxStateItems bounds the items of one control message, and
	// snapshotTarget the JSON of a snapshot part (one envelope holds
	// channel.MaxBody).
	maxStateItems  = 512
	snapshotTarget = 48 * 1024
	maxSnapParts   = 256
	// maxTombstones bounds the removals kept per kind; the oldest go.
	maxTombstones = 4096
	// maxItemLead: an item's version may not be further ahead of its
	// envelope's timestamp than this (the clock only runs ahead of the
	// wall clock by what a device saw from others, whose envelopes the
	// nodes held to their clocks), so a device with a broken clock
	// cannot freeze an item for ever.
	maxItemLead     = time.Hour
	snapshotRefresh = 3 * 24 * time.Hour
	maxItemAddrs    = 8
	maxAddrLen      = 256
	maxChainLen     = 4096
)

var (
	keyClock        = []byte("clock")         // 8 bytes: the last version issued or seen
	keySnapshotSent = []byte("snapshot-sent") // 8 bytes: when the last snapshot was posted, by this device or another (Unix ms)
	// keyStateKnown is present once this device holds the identity's
	// state: it made the master channel (the first device), or it
	// applied a whole snapshot of another device.
	keyStateKnown = []byte("state-known")
	// keyJoined: the tag of the link string this device joined with
	// (linkTag; its snapshot carries the same), then when it joined (8
	// bytes, Unix ms).
	keyJoined = []byte("joined")
)

// stateItem is one versioned thing of the identity's state.
type stateItem struct {
	Kind  string   `json:"k"`
	ID    string   `json:"id"`
	At    int64    `json:"at"`
	By    string   `json:"by"`
	Gone  string   `json:"gone,omitempty"`
	Name  string   `json:"name,omitempty"`  // channel: its name on the device that made the change
	Key   string   `json:"key,omitempty"`   // channel: its key string (present channels only)
	Addrs []string `json:"addrs,omitempty"` // node: multiaddrs without /p2p
	Hop   int      `json:"hop,omitempty"`   // node: the identity's hop there, as the poster knew it
	Chain string   `json:"chain,omitempty"` // ticket: the chain string
}

// snapPart says that a state message is part of a snapshot.
type snapPart struct {
	ID    string `json:"id"`
	Part  int    `json:"part"`
	Parts int    `json:"parts"`
	// Link names the link string the snapshot was posted for (linkTag),
	// so the device that joins with it knows which snapshot to wait
	// for; empty for a refresh.
	Link string `json:"link,omitempty"`
}

// newer reports whether a's version is after b's.
func (a stateItem) newer(b stateItem) bool {
	if a.At != b.At {
		return a.At > b.At
	}
	return a.By > b.By
}

func (a stateItem) key() []byte { return []byte(a.Kind + "/" + a.ID) }

// check validates an item from another device (untrusted bytes).
func (a stateItem) check() error {
	if a.At <= 0 {
		return fmt.Errorf("item %s/%s: version %d", a.Kind, a.ID, a.At)
	}
	if _, err := peer.Decode(a.By); err != nil {
		return fmt.Errorf("item %s/%s: by: %w", a.Kind, a.ID, err)
	}
	switch a.Kind {
	case itemChannel:
		id, err := channel.ParseID(a.ID)
		if err != nil {
			return fmt.Errorf("channel item: %w", err)
		}
		if a.Name != "" || a.Gone == "" {
			if err := checkName(a.Name); err != nil {
				return fmt.Errorf("channel item: %w", err)
			}
		}
		switch a.Gone {
		case "":
			k, err := channel.ParseKey(a.Key)
			if err != nil {
				return fmt.Errorf("channel item: %w", err)
			}
			if k.ID() != id {
				return fmt.Errorf("channel item: key of channel %s under ID %s", k.ID(), id)
			}
		case goneLeft, goneBlocked:
			if a.Key != "" {
				return errors.New("channel item: a key with a removal")
			}
		default:
			return fmt.Errorf("channel item: gone %q", a.Gone)
		}
		if len(a.Addrs) > 0 || a.Chain != "" || a.Hop != 0 {
			return errors.New("channel item: node or ticket fields")
		}
	case itemNode:
		if _, err := peer.Decode(a.ID); err != nil {
			return fmt.Errorf("node item: %w", err)
		}
		switch a.Gone {
		case "":
			if len(a.Addrs) == 0 || len(a.Addrs) > maxItemAddrs {
				return fmt.Errorf("node item: %d addresses (1 to %d)", len(a.Addrs), maxItemAddrs)
			}
			for _, s := range a.Addrs {
				if len(s) > maxAddrLen {
					return fmt.Errorf("node item: address of %d bytes", len(s))
				}
				if _, err := multiaddr.NewMultiaddr(s); err != nil {
					return fmt.Errorf("node item: %w", err)
				}
			}
		case goneRemoved:
			if len(a.Addrs) > 0 {
				return errors.New("node item: addresses with a removal")
			}
		default:
			return fmt.Errorf("node item: gone %q", a.Gone)
		}
		if a.Hop < HopUnknown || a.Hop > routing.MaxHop {
			return fmt.Errorf("node item: hop %d", a.Hop)
		}
		if a.Name != "" || a.Key != "" || a.Chain != "" {
			return errors.New("node item: channel or ticket fields")
		}
	case itemTicket:
		owner, err := channel.ParseIdentityKey(a.ID)
		if err != nil {
			return fmt.Errorf("ticket item: %w", err)
		}
		if a.Gone != "" || len(a.Chain) > maxChainLen {
			return errors.New("ticket item: a removal, or a chain too long")
		}
		ch, err := routing.ParseChain(a.Chain)
		if err != nil {
			return fmt.Errorf("ticket item: %w", err)
		}
		if len(ch) == 0 || ch[0].Issuer != owner {
			return errors.New("ticket item: the chain does not start at its owner")
		}
		if a.Name != "" || a.Key != "" || len(a.Addrs) > 0 || a.Hop != 0 {
			return errors.New("ticket item: channel or node fields")
		}
	default:
		return fmt.Errorf("item of kind %q", a.Kind)
	}
	return nil
}

// devState is the client's in-memory side of the shared state.
type devState struct {
	mu       sync.Mutex // item read-compare-write and the clock
	snapMu   sync.Mutex
	snaps    map[string]map[int]bool // snapshot ID -> parts applied
	got      chan struct{}           // closed once a whole snapshot was applied
	gotOnce  sync.Once
	snapBusy atomic.Bool
}

func newDevState() *devState {
	return &devState{snaps: map[string]map[int]bool{}, got: make(chan struct{})}
}

func (c *Client) devState() *devState { return c.dev }

func (c *Client) loadItem(k []byte) (stateItem, bool) {
	v, err := c.db.Meta(bucketDevState).Get(k)
	if err != nil {
		return stateItem{}, false
	}
	var it stateItem
	if json.Unmarshal(v, &it) != nil {
		return stateItem{}, false
	}
	return it, true
}

func (c *Client) storeItem(it stateItem) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return c.db.Meta(bucketDevState).Put(it.key(), b)
}

func (c *Client) clock() int64 {
	v, err := c.db.Meta(bucketDevState).Get(keyClock)
	if err != nil || len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (c *Client) setClock(at int64) {
	if err := c.db.Meta(bucketDevState).Put(keyClock, binary.BigEndian.AppendUint64(nil, uint64(at))); err != nil {
		c.log.Warn("device state clock", "err", err)
	}
}

// nextVersionLocked issues a version after every one seen. Called with
// devState.mu held.
func (c *Client) nextVersionLocked() int64 {
	at := max(c.cfg.Now().UnixMilli(), c.clock()+1)
	c.setClock(at)
	return at
}

// share records local changes of the identity's state and posts them in
// the master channel (if this identity has one yet) for its other
// devices. The change itself is already made.
func (c *Client) share(items ...stateItem) {
	d := c.devState()
	d.mu.Lock()
	for i := range items {
		items[i].At = c.nextVersionLocked()
		items[i].By = c.h.ID().String()
		if err := c.storeItem(items[i]); err != nil {
			c.log.Warn("device state not recorded", "item", string(items[i].key()), "err", err)
		}
	}
	d.mu.Unlock()
	master, err := c.byName(MasterChannel)
	if err != nil {
		return
	}
	c.postState(master, items, nil)
}

func (c *Client) postState(master *chanState, items []stateItem, snap *snapPart) {
	b, err := json.Marshal(deviceControl{Op: opState, From: c.h.ID().String(), Items: items, Snap: snap})
	if err != nil {
		c.log.Warn("master channel: state not encoded", "err", err)
		return
	}
	if _, err := c.postLater(master, channel.KindControl, append([]byte{control.Device}, b...)); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Warn("master channel: state not stored", "err", err)
	}
}

func channelItem(name string, k *channel.Key) stateItem {
	return stateItem{Kind: itemChannel, ID: k.ID().String(), Name: name, Key: k.String()}
}

// channelChanged is called after a channel was added, left or blocked
// here: the other devices and the home node hear of it.
func (c *Client) channelChanged(it stateItem) {
	c.share(it)
	if _, err := c.byName(MasterChannel); err == nil {
		c.postServeList()
	}
}

// nodeChanged is called after a node was added, paired or removed here.
func (c *Client) nodeChanged(p peer.ID) {
	it := stateItem{Kind: itemNode, ID: p.String()}
	recs, err := c.nodeRecords()
	if err != nil {
		return
	}
	r, ok := recs[p]
	if !ok {
		it.Gone = goneRemoved
	} else {
		it.Addrs, it.Hop = shareableAddrs(r.Addrs), r.Hop
		if len(it.Addrs) == 0 {
			return
		}
	}
	c.share(it)
}

func shareableAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if len(a) <= maxAddrLen && len(out) < maxItemAddrs {
			out = append(out, a)
		}
	}
	return out
}

// ticketChanged is called after a ticket chain was set here.
func (c *Client) ticketChanged(owner channel.IdentityKey, chain string) {
	c.share(stateItem{Kind: itemTicket, ID: owner.String(), Chain: chain})
}

// applyState applies the items of another device's state message m, each
// only if newer than what this device holds. Called under procMu.
func (c *Client) applyState(dc deviceControl, m *channel.Message) {
	lead := m.Timestamp.Add(maxItemLead).UnixMilli()
	d := c.devState()
	var chans, nodes bool
	d.mu.Lock()
	seen := c.clock()
	for _, it := range dc.Items {
		if it.At > lead {
			c.log.Warn("master channel: item from the future ignored", "item", string(it.key()), "at", it.At)
			continue
		}
		if cur, ok := c.loadItem(it.key()); ok && !it.newer(cur) {
			continue
		}
		// The effect first, then the record: after a crash in between
		// the message is processed again and the effect repeated.
		switch it.Kind {
		case itemChannel:
			chans = c.applyChannel(it) || chans
		case itemNode:
			nodes = c.applyNode(it) || nodes
		case itemTicket:
			c.applyTicket(it)
		}
		if err := c.storeItem(it); err != nil {
			c.log.Warn("device state not recorded", "item", string(it.key()), "err", err)
		}
		seen = max(seen, it.At)
	}
	if seen > c.clock() {
		c.setClock(seen)
	}
	d.mu.Unlock()
	if dc.Snap != nil {
		c.snapshotPart(*dc.Snap, m.Timestamp)
	}
	if chans || nodes {
		// The nodes serve the channels another device added; the nodes
		// it added are used.
		c.refreshSoon()
	}
}

func (c *Client) chanByID(id channel.ID) *chanState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chans[id]
}

// applyChannel makes another device's channel change here; it reports
// whether the channel set changed.
func (c *Client) applyChannel(it stateItem) bool {
	id, _ := channel.ParseID(it.ID)
	cs := c.chanByID(id)
	if cs != nil && internalChannel(cs.name) {
		return false
	}
	switch it.Gone {
	case "":
		_ = c.db.Meta(bucketBlocked).Delete(id[:])
		if cs != nil {
			return false // here already, maybe under another name: kept
		}
		k, _ := channel.ParseKey(it.Key)
		name := c.freeName(it.Name, id)
		if err := c.addChannel(name, k); err != nil {
			c.log.Warn("master channel: channel not added", "name", name, "err", err)
			return false
		}
		return true
	case goneBlocked:
		name := it.Name
		if cs != nil {
			name = cs.name
		}
		if err := c.db.Meta(bucketBlocked).Put(id[:], []byte(name)); err != nil {
			c.log.Warn("master channel: block not recorded", "channel", id, "err", err)
		}
	case goneLeft:
		_ = c.db.Meta(bucketBlocked).Delete(id[:])
	}
	if cs == nil {
		return false
	}
	if err := c.forgetChannel(cs); err != nil {
		c.log.Warn("master channel: channel not left", "name", cs.name, "err", err)
		return false
	}
	return true
}

// forgetChannel drops a channel's key and stops syncing it.
func (c *Client) forgetChannel(cs *chanState) error {
	if err := c.db.Meta(bucketChannels).Delete([]byte(cs.name)); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.chans, cs.key.ID())
	c.mu.Unlock()
	c.svc.Unwant(cs.key.ID())
	return nil
}

// freeName is name, or when another channel here has that name, name
// with the start of the channel ID (names are local; two devices that
// made a channel of the same name at once keep both).
func (c *Client) freeName(name string, id channel.ID) string {
	taken := func(n string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cs := range c.chans {
			if cs.name == n {
				return true
			}
		}
		return false
	}
	if !taken(name) {
		return name
	}
	hx := id.String()
	for _, n := range []int{4, 8, 16, len(hx)} {
		suffix := "-" + hx[:n]
		cand := name
		if len(cand)+len(suffix) > maxNameLen {
			cand = cand[:maxNameLen-len(suffix)]
		}
		if cand += suffix; !taken(cand) {
			return cand
		}
	}
	return name // taken even so: addChannel says why
}

// applyNode makes another device's node change here; it reports whether
// the node set changed. Called under procMu.
func (c *Client) applyNode(it stateItem) bool {
	p, _ := peer.Decode(it.ID)
	if p == c.h.ID() {
		return false
	}
	if it.Gone == goneRemoved {
		if err := c.dropNodeLocked(p); err != nil {
			c.log.Warn("master channel: node not removed", "node", p, "err", err)
			return false
		}
		return true
	}
	err := c.updateNodeLocked(p, func(r *nodeRecord, existed bool) {
		if !existed {
			r.Hop, r.Source = it.Hop, "device"
		}
		r.Addrs = mergeAddrs(r.Addrs, it.Addrs)
	})
	if err != nil {
		c.log.Warn("master channel: node not added", "node", p, "err", err)
		return false
	}
	return true
}

// dropNodeLocked forgets node p: its record, what was handed to it, and
// the connection. Called under procMu.
func (c *Client) dropNodeLocked(p peer.ID) error {
	if err := c.db.Meta(bucketNodes).Delete([]byte(p)); err != nil {
		return err
	}
	c.forgetStatements(p)
	if v, err := c.db.Meta(bucketSelf).Get(keyOwns); err == nil && peer.ID(v) == p {
		_ = c.db.Meta(bucketSelf).Delete(keyOwns)
	}
	c.h.ConnManager().Unprotect(p, "redpanda-client-node")
	_ = c.h.Network().ClosePeer(p)
	return nil
}

// applyTicket stores a chain another device set, if it names this
// identity and is valid now.
func (c *Client) applyTicket(it stateItem) {
	ch, _ := routing.ParseChain(it.Chain)
	if len(ch) == 0 || ch[len(ch)-1].Subject != c.self.Public() {
		c.log.Warn("master channel: a ticket chain for another identity ignored", "owner", it.ID)
		return
	}
	if _, err := ch.Verify(ch[0].Issuer, c.self.Public(), c.cfg.Now()); err != nil {
		c.log.Info("master channel: ticket chain not valid now; ignored", "owner", it.ID, "err", err)
		return
	}
	owner := ch[0].Issuer
	if err := c.db.Meta(bucketSelf).Put(append(append([]byte{}, chainPrefix...), owner[:]...), []byte(ch.String())); err != nil {
		c.log.Warn("master channel: ticket chain not stored", "err", err)
	}
}

// snapshotItems is every item of this device's state: its channels,
// nodes (not those learned from adverts) and chains, and the removals it
// knows. Things from before items were kept get a version from when they
// were added here, or the oldest one.
func (c *Client) snapshotItems() []stateItem {
	d := c.devState()
	d.mu.Lock()
	defer d.mu.Unlock()
	stored := map[string]stateItem{}
	_ = c.db.Meta(bucketDevState).ForEach(func(k, v []byte) error {
		var it stateItem
		if strings.Contains(string(k), "/") && json.Unmarshal(v, &it) == nil {
			stored[string(k)] = it
		}
		return nil
	})
	self := c.h.ID().String()
	var out []stateItem
	take := func(it stateItem, synthAt int64) {
		k := string(it.key())
		cur, ok := stored[k]
		delete(stored, k)
		switch {
		case ok && cur.Gone == "" && cur.Key == it.Key && cur.Chain == it.Chain:
			out = append(out, cur)
			return
		case ok:
			// Recorded as gone (or otherwise) but here: say so as new.
			it.At = c.nextVersionLocked()
		default:
			it.At = max(synthAt, 1)
		}
		it.By = self
		_ = c.storeItem(it)
		out = append(out, it)
	}
	_ = c.db.Meta(bucketChannels).ForEach(func(k, v []byte) error {
		if internalChannel(string(k)) {
			return nil
		}
		var r channelRecord
		if json.Unmarshal(v, &r) != nil {
			return nil
		}
		key, err := channel.ParseKey(r.Key)
		if err != nil {
			return nil
		}
		take(channelItem(string(k), key), r.Joined.UnixMilli())
		return nil
	})
	if recs, err := c.nodeRecords(); err == nil {
		for p, r := range recs {
			if r.Source == "advert" {
				continue
			}
			if addrs := shareableAddrs(r.Addrs); len(addrs) > 0 {
				it := stateItem{Kind: itemNode, ID: p.String(), Addrs: addrs, Hop: r.Hop}
				if cur, ok := stored[string(it.key())]; ok && cur.Gone == "" {
					it.At, it.By = cur.At, cur.By // addresses change; the version is the node's
					delete(stored, string(it.key()))
					out = append(out, it)
					continue
				}
				take(it, 1)
			}
		}
	}
	if chains, err := c.chains(); err == nil {
		for _, ch := range chains {
			take(stateItem{Kind: itemTicket, ID: ch[0].Issuer.String(), Chain: ch.String()}, 1)
		}
	}
	// What is left are removals (and things that could not be made here).
	var gone []stateItem
	for _, it := range stored {
		if it.Gone != "" {
			gone = append(gone, it)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[j].newer(gone[i]) })
	perKind := map[string]int{}
	for i := len(gone) - 1; i >= 0; i-- {
		it := gone[i]
		if perKind[it.Kind]++; perKind[it.Kind] > maxTombstones {
			_ = c.db.Meta(bucketDevState).Delete(it.key())
			continue
		}
		out = append(out, it)
	}
	return out
}

// packItems splits items into parts whose JSON stays under
// snapshotTarget and maxStateItems.
func packItems(items []stateItem) [][]stateItem {
	var out [][]stateItem
	var cur []stateItem
	size := 0
	for _, it := range items {
		b, _ := json.Marshal(it)
		if len(cur) > 0 && (size+len(b)+1 > snapshotTarget || len(cur) == maxStateItems) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, it)
		size += len(b) + 1
	}
	if len(cur) > 0 || len(out) == 0 {
		out = append(out, cur)
	}
	return out
}

// postSnapshot posts every item of this device's state in the master
// channel, in parts; link is the tag of the link string it is posted for
// ("": a refresh).
func (c *Client) postSnapshot(link string) error {
	master, err := c.byName(MasterChannel)
	if err != nil {
		return ErrNoMaster
	}
	parts := packItems(c.snapshotItems())
	if len(parts) > maxSnapParts {
		return fmt.Errorf("device state of %d parts, at most %d", len(parts), maxSnapParts)
	}
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	for i, p := range parts {
		c.postState(master, p, &snapPart{ID: id, Part: i, Parts: len(parts), Link: link})
	}
	_ = c.db.Meta(bucketDevState).Put(keySnapshotSent, binary.BigEndian.AppendUint64(nil, uint64(c.cfg.Now().UnixMilli())))
	return nil
}

// snapshotIfDue posts a snapshot when this device's last one is older
// than snapshotRefresh (or it never posted one).
func (c *Client) snapshotIfDue() {
	if _, err := c.byName(MasterChannel); err != nil || !c.hasDeviceState() {
		return // a new device does not speak for the identity before it heard it
	}
	v, err := c.db.Meta(bucketDevState).Get(keySnapshotSent)
	if err == nil && len(v) == 8 && c.cfg.Now().Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(v)))) < snapshotRefresh {
		return
	}
	d := c.devState()
	if !d.snapBusy.CompareAndSwap(false, true) {
		return
	}
	defer d.snapBusy.Store(false)
	if err := c.postSnapshot(""); err != nil {
		c.log.Warn("device state snapshot not posted", "err", err)
	}
}

// joinedWith records the link string this device joined with and when.
func (c *Client) joinedWith(link string) error {
	v := binary.BigEndian.AppendUint64([]byte(linkTag(link)), uint64(c.cfg.Now().UnixMilli()))
	return c.db.Meta(bucketDevState).Put(keyJoined, v)
}

// snapshotPart notes that a part of another device's snapshot, posted at
// ts, was applied. Once all parts of the snapshot posted for this
// device's link were (or of one posted after the device joined: the link
// came from a client that posts none), Devices.WaitState returns.
func (c *Client) snapshotPart(sp snapPart, ts time.Time) {
	d := c.devState()
	d.snapMu.Lock()
	seen := d.snaps[sp.ID]
	if seen == nil {
		if len(d.snaps) >= 64 {
			clear(d.snaps)
		}
		seen = map[int]bool{}
		d.snaps[sp.ID] = seen
	}
	seen[sp.Part] = true
	whole := len(seen) == sp.Parts
	d.snapMu.Unlock()
	if !whole {
		return
	}
	// Another device's snapshot is as good as one of ours: the refresh
	// is due only when no device posted one for snapshotRefresh.
	if v, err := c.db.Meta(bucketDevState).Get(keySnapshotSent); err != nil || len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < ts.UnixMilli() {
		_ = c.db.Meta(bucketDevState).Put(keySnapshotSent, binary.BigEndian.AppendUint64(nil, uint64(ts.UnixMilli())))
	}
	if c.hasDeviceState() {
		return
	}
	v, err := c.db.Meta(bucketDevState).Get(keyJoined)
	if err != nil || len(v) < 8 {
		c.stateKnown() // not a joined device (or joined before tags)
		return
	}
	tag, joined := string(v[:len(v)-8]), int64(binary.BigEndian.Uint64(v[len(v)-8:]))
	if sp.Link == tag || ts.UnixMilli() > joined {
		c.stateKnown()
	}
}

// stateKnown records that this device holds the identity's state.
func (c *Client) stateKnown() {
	if err := c.db.Meta(bucketDevState).Put(keyStateKnown, []byte{1}); err != nil {
		c.log.Warn("device state mark", "err", err)
	}
	d := c.devState()
	d.gotOnce.Do(func() { close(d.got) })
}

// hasDeviceState implements Devices.HasState.
func (c *Client) hasDeviceState() bool {
	v, _ := c.db.Meta(bucketDevState).Get(keyStateKnown)
	return v != nil
}

// waitDeviceState implements Devices.WaitState.
func (c *Client) waitDeviceState(ctx context.Context) error {
	if c.hasDeviceState() {
		return nil
	}
	d := c.devState()
	select {
	case <-d.got:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client.Devices.WaitState: no snapshot from another device yet: %w", ctx.Err())
	case <-c.ctx.Done():
		return ErrClosed
	}
}
