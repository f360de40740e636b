package redpanda

import (
	"time"

	"github.com/redpanda-p2p/homenode/client"
)

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// StringList is a list of strings (gobind binds no Go slices but []byte).
type StringList struct{ items []string }

// NewStringList makes an empty list, for calls that take one.
func NewStringList() *StringList { return &StringList{} }

// Size is the number of strings.
func (l *StringList) Size() int {
	if l == nil {
		return 0
	}
	return len(l.items)
}

// Get returns string i, or "" when i is out of range.
func (l *StringList) Get(i int) string {
	if l == nil || i < 0 || i >= len(l.items) {
		return ""
	}
	return l.items[i]
}

// Add appends s.
func (l *StringList) Add(s string) { l.items = append(l.items, s) }

func (l *StringList) slice() []string {
	if l == nil {
		return nil
	}
	return append([]string(nil), l.items...)
}

func stringList(s []string) *StringList { return &StringList{items: append([]string(nil), s...)} }

// Message is a text message as the user sees it: decrypted, its author's
// signature checked.
type Message struct {
	ID          string // message ID, hex
	Channel     string // local channel name
	ChannelID   string // hex
	Author      string // author identity ("rpi…")
	Mine        bool   // written by this identity (on this or another device)
	Text        string
	TimestampMs int64 // the author's clock, Unix ms
	deliveredTo []string
}

// DeliveredTo lists the identities that posted a delivery receipt for the
// message (filled in History pages; empty on messages from the Listener).
func (m *Message) DeliveredTo() *StringList { return stringList(m.deliveredTo) }

func toMessage(m client.Message) *Message {
	return &Message{ID: m.ID, Channel: m.Channel, ChannelID: m.ChannelID, Author: m.Author, Mine: m.Mine,
		Text: m.Text, TimestampMs: ms(m.Timestamp), deliveredTo: m.DeliveredTo}
}

// MessageList is a page of messages, oldest first.
type MessageList struct{ items []*Message }

// Size is the number of messages.
func (l *MessageList) Size() int { return len(l.items) }

// Get returns message i (0 is the oldest), or nil when out of range.
func (l *MessageList) Get(i int) *Message {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

func toMessages(ms []client.Message) *MessageList {
	l := &MessageList{items: make([]*Message, len(ms))}
	for i, m := range ms {
		l.items[i] = toMessage(m)
	}
	return l
}

// Kinds of Event.
const (
	EventNodeConnected     = client.EventNodeConnected     // a connection to a node came up (Node, Detail: its address)
	EventNodeDisconnected  = client.EventNodeDisconnected  // the last connection to a node went down (Node)
	EventRegistrationEnded = client.EventRegistrationEnded // a node ended this client's registration (Node, Detail); the client registers elsewhere
	EventReceipt           = client.EventReceipt           // someone read a message (MessageID, Reader)
	EventPaused            = "paused"                      // Pause took the client off the network
	EventResumed           = "resumed"                     // Resume opened the home again (the connection follows as node-connected)
)

// Event is something that happened besides a message. Fields its Kind
// does not use are empty.
type Event struct {
	Kind      string
	Node      string // a node's peer ID
	MessageID string
	Reader    string // identity that read MessageID
	Detail    string
	TimeMs    int64
}

// Listener is what the app implements to receive messages and events.
// Its methods are called one at a time, in order, on a thread of the
// library's (never the app's main thread): post to the UI thread from
// them, return quickly, and do not throw. They may call the Client.
type Listener interface {
	OnMessage(m *Message)
	OnEvent(e *Event)
}

// Logger receives the library's log lines (SetLogger), for Logcat or
// os_log.
type Logger interface {
	Log(level, line string)
}

// Channel is one channel of this home.
type Channel struct {
	Name       string
	ID         string // channel ID, hex
	Capability string // "full", "read" or "write"
	JoinedMs   int64
}

func toChannel(c client.Channel) *Channel {
	return &Channel{Name: c.Name, ID: c.ID, Capability: c.Capability, JoinedMs: ms(c.Joined)}
}

// ChannelList is a list of channels, by name.
type ChannelList struct{ items []*Channel }

// Size is the number of channels.
func (l *ChannelList) Size() int { return len(l.items) }

// Get returns channel i, or nil when out of range.
func (l *ChannelList) Get(i int) *Channel {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// SendResult says where a sent message is durable.
type SendResult struct {
	ID string // message ID, hex
	// Delivered: at least one node acknowledged it as durable. When
	// false it is kept on the phone and goes out by itself when a node is
	// reachable again (show it as pending, not as failed).
	Delivered bool
	ackedBy   []string
	failed    []string
}

// AckedBy lists the peer IDs of the nodes that hold the message durably.
func (r *SendResult) AckedBy() *StringList { return stringList(r.ackedBy) }

// Failed lists "node: reason" for the nodes that did not take it.
func (r *SendResult) Failed() *StringList { return stringList(r.failed) }

// Node is a super node this client knows.
type Node struct {
	ID         string // peer ID
	Hop        int    // this client's hop there; -1 when not known
	Source     string // "paired", "manual", "advert", "ticket", …
	Registered bool
	ExpiresMs  int64 // when the registration ends unless renewed
	Load       int   // registrations it serves
	Capacity   int
	RTTMs      int64 // last measured round trip; 0 when not measured
	Connected  bool
	LastError  string
	addrs      []string
}

// Addrs lists its multiaddrs (without /p2p).
func (n *Node) Addrs() *StringList { return stringList(n.addrs) }

func toNode(n client.Node) *Node {
	return &Node{ID: n.ID, Hop: n.Hop, Source: n.Source, Registered: n.Registered, ExpiresMs: ms(n.Expires),
		Load: n.Load, Capacity: n.Capacity, RTTMs: n.RTT.Milliseconds(), Connected: n.Connected,
		LastError: n.LastError, addrs: n.Addrs}
}

// NodeList is a list of nodes, best first.
type NodeList struct{ items []*Node }

// Size is the number of nodes.
func (l *NodeList) Size() int { return len(l.items) }

// Get returns node i, or nil when out of range.
func (l *NodeList) Get(i int) *Node {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// Ticket is a hop-ticket chain this client holds.
type Ticket struct {
	Owner     string // identity of the node owner the chain starts at
	Hop       int    // this client's hop at that owner's node
	ExpiresMs int64
	Chain     string // the chain string
}

func toTicket(t client.Ticket) *Ticket {
	return &Ticket{Owner: t.Owner, Hop: t.Hop, ExpiresMs: ms(t.Expires), Chain: t.Chain}
}

// TicketList is a list of tickets, lowest hop first.
type TicketList struct{ items []*Ticket }

// Size is the number of tickets.
func (l *TicketList) Size() int { return len(l.items) }

// Get returns ticket i, or nil when out of range.
func (l *TicketList) Get(i int) *Ticket {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// Device is one device of this identity.
type Device struct {
	Peer     string // its peer ID
	Name     string
	JoinedMs int64
	Self     bool // this device
}

// DeviceList is a list of devices, oldest first.
type DeviceList struct{ items []*Device }

// Size is the number of devices.
func (l *DeviceList) Size() int { return len(l.items) }

// Get returns device i, or nil when out of range.
func (l *DeviceList) Get(i int) *Device {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// Agreement is what a key agreement (invitation, friends) ends with.
type Agreement struct {
	// Answer is the string to send back (AcceptInvite only).
	Answer string
	// SafetyCode is the same on both phones unless a key was swapped in
	// transit: the two people compare it by voice or in person.
	SafetyCode string
	channel    *Channel
}

// Channel is the new channel.
func (a *Agreement) Channel() *Channel { return a.channel }

func toAgreement(a *client.Agreement) *Agreement {
	return &Agreement{Answer: a.Answer, SafetyCode: a.SafetyCode, channel: toChannel(a.Channel)}
}

// Contact is one address-book entry.
type Contact struct {
	Address   string // normalised phone number or e-mail address; stays on the phone
	Hash      string // what friends are asked for, hex
	Identity  string
	Channel   string // local name of the channel shared with the contact
	ChannelID string
}

// ContactList is the address book, by address.
type ContactList struct{ items []*Contact }

// Size is the number of contacts.
func (l *ContactList) Size() int { return len(l.items) }

// Get returns contact i, or nil when out of range.
func (l *ContactList) Get(i int) *Contact {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// ContactAnswer is one friend's answer to a lookup.
type ContactAnswer struct {
	Identity string // the contact's identity, as this friend says
	Friend   string // the friend who answered
	Via      string // the channel it came through: a path to the contact
}

// ContactAnswerList is a lookup's answers.
type ContactAnswerList struct{ items []*ContactAnswer }

// Size is the number of answers.
func (l *ContactAnswerList) Size() int { return len(l.items) }

// Get returns answer i, or nil when out of range.
func (l *ContactAnswerList) Get(i int) *ContactAnswer {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

// LookupResult is what FindContact collected.
type LookupResult struct {
	Hash string // the contact hash asked for, hex
	// Conflict: friends named different identities for the address; one
	// of them lies or is mistaken (agree through several friends' paths).
	Conflict bool
	r        *client.LookupResult
}

// Answers lists the answers, by identity, then channel.
func (r *LookupResult) Answers() *ContactAnswerList {
	l := &ContactAnswerList{}
	for _, a := range r.r.Answers {
		l.items = append(l.items, &ContactAnswer{Identity: a.Identity, Friend: a.Friend, Via: a.Via})
	}
	return l
}

// Identities lists the distinct identities named.
func (r *LookupResult) Identities() *StringList { return stringList(r.r.Identities) }

// Via lists the channels through which friends named identity: what
// AgreeViaFriends takes.
func (r *LookupResult) Via(identity string) *StringList { return stringList(r.r.Via(identity)) }

// Asked lists the channels the query went into.
func (r *LookupResult) Asked() *StringList { return stringList(r.r.Asked) }

// NotDelivered lists the channels no node took the query for.
func (r *LookupResult) NotDelivered() *StringList { return stringList(r.r.NotDelivered) }

// Rejected lists the answers refused, with why.
func (r *LookupResult) Rejected() *StringList { return stringList(r.r.Rejected) }

// BlockResult says what PostBlock posted.
type BlockResult struct {
	Hash      string // hex: what a reader checks
	Messages  int
	Chunks    int
	Delivered bool // every chunk reached a node (else they go out later)
}

// PairingCode is what a pairing QR code names.
type PairingCode struct {
	NodeID string // the node's peer ID
	addrs  []string
}

// Addrs lists the node's addresses from the code (multiaddrs).
func (p *PairingCode) Addrs() *StringList { return stringList(p.addrs) }

// NodeStatus is the owned node's status report, as its status page shows
// it.
type NodeStatus struct {
	NodeID        string
	Version       string
	Board         string
	UptimeSeconds int64
	PairingState  string // "owned", "waiting", "new"
	Owner         string
	Reachable     bool
	Diagnosis     string // reachability in words
	ExternalAddr  string
	Peers         int
	Users         int
	Channels      int
	Messages      int64
	DiskFreeBytes int64
	DiskBytes     int64
	ClockSynced   bool
	Summary       string // one line: what `systemctl status` shows
	JSON          string // the whole report (the node's /status.json)
	warnings      []string
}

// Warnings lists what the node warns its owner about.
func (s *NodeStatus) Warnings() *StringList { return stringList(s.warnings) }
