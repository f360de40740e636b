package status

import (
	"context"
	"strconv"
	"time"
)

// Source produces a fresh report. The appliance implements it; the page,
// the metrics collector and the admin socket call it on every request.
type Source interface {
	Report(ctx context.Context) (Report, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (Report, error)

// Report calls f.
func (f SourceFunc) Report(ctx context.Context) (Report, error) { return f(ctx) }

// Report is everything a person sees about the node at one instant.
// JSON field names are a stable interface for `homenode status --json`.
type Report struct {
	GeneratedAt  time.Time     `json:"generated_at"`
	Node         Node          `json:"node"`
	Version      string        `json:"version"`
	Uptime       time.Duration `json:"uptime_ns"`
	Board        string        `json:"board,omitempty"` // hardware model, e.g. "Raspberry Pi 4 Model B Rev 1.4"
	Pairing      Pairing       `json:"pairing"`
	Reachability Reachability  `json:"reachability"`
	Peers        Peers         `json:"peers"`
	Users        Users         `json:"users"`
	Channels     []Channel     `json:"channels"`
	Messages     Messages      `json:"messages"`
	Counters     Counters      `json:"counters"`
	Disk         Disk          `json:"disk"`
	Memory       Memory        `json:"memory"`
	// CPUTempCelsius is nil when the board has no readable sensor.
	CPUTempCelsius *float64   `json:"cpu_temp_celsius,omitempty"`
	Throttling     Throttling `json:"throttling"`
	Clock          Clock      `json:"clock"`
	// Warnings are plain sentences for a person ("Disk almost full: 120 MB free.").
	Warnings []string `json:"warnings"`
	// Update is the firmware update's state, on the A/B image only.
	Update *Update `json:"update,omitempty"`
}

// Node is the node's libp2p identity.
type Node struct {
	PeerID    string   `json:"peer_id"`
	Addresses []string `json:"addresses"`
}

// PairingState is where the node is in its first-boot pairing.
type PairingState string

// Pairing states, in the order a node goes through them.
const (
	PairingNew     PairingState = "new"     // identity not made yet, or no token yet
	PairingWaiting PairingState = "waiting" // token issued; QR shown; no owner
	PairingOwned   PairingState = "owned"   // owner registered at hop 0
)

// PairingStates lists every state, for metrics that export one series each.
var PairingStates = []PairingState{PairingNew, PairingWaiting, PairingOwned}

// Pairing is the pairing state. URI is set only while waiting; Owner only
// once owned.
type Pairing struct {
	State PairingState `json:"state"`
	URI   string       `json:"uri,omitempty"`
	Owner string       `json:"owner,omitempty"`
}

// Reachability says whether peers outside the home can reach the node and
// how, in words a person can act on.
type Reachability struct {
	Reachable bool `json:"reachable"`
	// Diagnosis is a short phrase: "reachable via UPnP", "behind CGNAT".
	Diagnosis string `json:"diagnosis"`
	// Hint is what the person could do about it, empty when nothing is needed.
	Hint         string `json:"hint,omitempty"`
	ExternalAddr string `json:"external_addr,omitempty"` // "203.0.113.7:4001"
	// Relay is the relay state: "not needed", "reserved via 12D3…", "searching".
	Relay string `json:"relay,omitempty"`
}

// Direction is which side opened a connection.
type Direction string

// Connection directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// Peer is one connected peer.
type Peer struct {
	ID        string        `json:"id"`
	Addr      string        `json:"addr"`
	Direction Direction     `json:"direction"`
	Latency   time.Duration `json:"latency_ns"` // 0 when not measured yet
}

// Peers is the connected-peer summary. Count may exceed len(List) when the
// source truncates the list.
type Peers struct {
	Count int    `json:"count"`
	List  []Peer `json:"list"`
}

// MaxHop is the furthest hop a ticket chain may reach (DESIGN.md).
const MaxHop = 6

// Hop is a user's distance from the owner in hop tickets: 0 is the owner,
// MaxHop the furthest chain, HopInfinity a client with no chain.
type Hop int

// HopInfinity marks a registration without a ticket chain. In JSON it is -1.
const HopInfinity Hop = -1

// String renders 0..6 as digits and HopInfinity as "inf" (also the metric label).
func (h Hop) String() string {
	if h == HopInfinity {
		return "inf"
	}
	return strconv.Itoa(int(h))
}

// Valid reports whether h is 0..MaxHop or HopInfinity.
func (h Hop) Valid() bool { return h == HopInfinity || (h >= 0 && h <= MaxHop) }

// Users counts registered users by hop.
type Users struct {
	ByHop    [MaxHop + 1]int `json:"by_hop"`
	Infinity int             `json:"infinity"`
}

// Total is the number of registered users at every hop.
func (u Users) Total() int {
	n := u.Infinity
	for _, c := range u.ByHop {
		n += c
	}
	return n
}

// Count returns the number of users at hop h (0 for an invalid hop).
func (u Users) Count(h Hop) int {
	switch {
	case h == HopInfinity:
		return u.Infinity
	case h >= 0 && h <= MaxHop:
		return u.ByHop[h]
	}
	return 0
}

// Hops lists 0..MaxHop then HopInfinity, the order tables and metrics use.
func Hops() []Hop {
	hs := make([]Hop, 0, MaxHop+2)
	for h := Hop(0); h <= MaxHop; h++ {
		hs = append(hs, h)
	}
	return append(hs, HopInfinity)
}

// User is one registered user, as `homenode users` lists them.
type User struct {
	Identity string `json:"identity"`
	Hop      Hop    `json:"hop"`
	Sponsor  string `json:"sponsor,omitempty"` // who issued the hop ticket; empty for the owner
	// Chain is the trust chain that admitted the user, owner first, down
	// to Sponsor (empty for the owner and strangers).
	Chain      []string  `json:"chain,omitempty"`
	Registered time.Time `json:"registered"`
}

// Channel is one channel the node serves.
type Channel struct {
	ID       string    `json:"id"`
	Messages int64     `json:"messages"`
	Bytes    int64     `json:"bytes"`
	Newest   time.Time `json:"newest,omitzero"`
	Blocked  bool      `json:"blocked,omitempty"`
	// Control marks a channel of the owner's control traffic (the node
	// channel, the master channel, dust), not a conversation.
	Control bool `json:"control,omitempty"`
}

// PeopleChannels counts the channels people write in (not Control).
func (r Report) PeopleChannels() int { return People(r.Channels) }

// ControlChannels counts the owner's control channels.
func (r Report) ControlChannels() int { return len(r.Channels) - People(r.Channels) }

// People counts the channels that are conversations (not Control).
func People(chans []Channel) int {
	n := 0
	for _, c := range chans {
		if !c.Control {
			n++
		}
	}
	return n
}

// Messages is what the store holds: Count and Bytes in the channels
// people write in, Control* in the control channels.
type Messages struct {
	Count        int64 `json:"count"`
	Bytes        int64 `json:"bytes"`
	ControlCount int64 `json:"control_count"`
	ControlBytes int64 `json:"control_bytes"`
}

// Counters are totals since the node started, for graphs (/metrics
// exports them as *_total counters).
type Counters struct {
	// MessagesReceived arrived from peers; MessagesStored were newly
	// stored (from peers and the node itself); MessagesDuplicate arrived
	// already held; MessagesRelayed were sent on to peers.
	MessagesReceived  uint64 `json:"messages_received"`
	MessagesStored    uint64 `json:"messages_stored"`
	MessagesDuplicate uint64 `json:"messages_duplicate"`
	MessagesRelayed   uint64 `json:"messages_relayed"`
	// MessagesRefused by the relay rule, by reason ("bad_signature",
	// "not_accepted", "rate_limited", ...).
	MessagesRefused map[string]uint64 `json:"messages_refused"`
	// Registrations answered, by outcome: "ok" or the refusal ("bad_chain",
	// "hop_too_far", "node_full", ...).
	Registrations map[string]uint64 `json:"registrations"`
	// PairingAttempts by outcome: "paired", "rejected", "not_waiting", ...
	PairingAttempts map[string]uint64 `json:"pairing_attempts"`
	// BytesIn and BytesOut are the bytes of libp2p streams.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}

// Disk is the file system holding the data directory.
type Disk struct {
	Path       string `json:"path"`
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
}

// Memory is the process's memory use.
type Memory struct {
	RSSBytes uint64 `json:"rss_bytes"`
}

// Throttling is the Raspberry Pi firmware's throttling flags. Known is
// false on boards that do not report them; the flags are then meaningless.
type Throttling struct {
	Known           bool `json:"known"`
	UnderVoltage    bool `json:"under_voltage"`
	FrequencyCapped bool `json:"frequency_capped"`
	Throttled       bool `json:"throttled"`
	SoftTempLimit   bool `json:"soft_temp_limit"`
	// UnderVoltageOccurred is sticky since boot: a weak power supply shows
	// here even when the voltage is fine right now.
	UnderVoltageOccurred bool `json:"under_voltage_occurred"`
	ThrottledOccurred    bool `json:"throttled_occurred"`
}

// Clock is whether the system clock can be trusted. A Pi has no real-time
// clock: until NTP synchronises it, message timestamps are not checked.
type Clock struct {
	Synchronized bool   `json:"synchronized"`
	Source       string `json:"source,omitempty"` // how it was determined: "timesyncd", "adjtimex"
}
