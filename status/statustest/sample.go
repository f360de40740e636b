// Package statustest provides a filled status.Report for the tests of the
// packages that render one (page, metrics, admin socket). It must not be
// imported by non-test code.
package statustest

import (
	"time"

	"github.com/redpanda-p2p/homenode/status"
)

// Identifiers used by Sample, exported so tests can assert them.
const (
	PeerID  = "12D3KooWQnwEGNqcM2nAcPtRR9rAX8Hrg4k9kJLCHoTyuGz1c5bU"
	OwnerID = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
	Channel = "rpc1Dz8pA1m4Y9qL7kV3x2WcN5bT6hJfE8uGsR4oPzXyQvKdM"
	// ControlChannel is the owner's node channel in Sample.
	ControlChannel = "rpc1Nc5kT8wQ2mZ7vB4xL9sD3fH6jR1yG8uE5oA2pW7iK4nVq"
	Peer1          = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
)

// Sample returns a report of an owned, reachable node with peers, users at
// several hops, two channels and a warning. Every call returns a fresh copy.
func Sample() status.Report {
	temp := 61.5
	now := time.Date(2026, 11, 24, 18, 30, 0, 0, time.UTC)
	return status.Report{
		GeneratedAt: now,
		Node: status.Node{
			PeerID:    PeerID,
			Addresses: []string{"/ip4/192.168.1.20/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1"},
		},
		Version: "v0.3.1",
		Uptime:  3*24*time.Hour + 4*time.Hour + 12*time.Minute,
		Board:   "Raspberry Pi 4 Model B Rev 1.4",
		Pairing: status.Pairing{State: status.PairingOwned, Owner: OwnerID},
		Reachability: status.Reachability{
			Reachable:    true,
			Diagnosis:    "reachable via UPnP",
			ExternalAddr: "203.0.113.7:4001",
			Relay:        "not needed",
		},
		Peers: status.Peers{Count: 3, List: []status.Peer{
			{ID: Peer1, Addr: "/ip4/198.51.100.4/tcp/4001", Direction: status.Outbound, Latency: 23 * time.Millisecond},
			{ID: "12D3KooWLb3CHdA4ReY8XbhKbmEXqvGNmo7mr2UVgBKnyA5wAGRp", Addr: "/ip4/192.168.1.31/udp/4001/quic-v1", Direction: status.Inbound, Latency: 2 * time.Millisecond},
			{ID: "12D3KooWGzBfkjqA4ch5ZqYWxRr3rhPnXzGqtGNmyU7ezM4YvBqE", Addr: "/ip4/100.64.3.9/tcp/4001", Direction: status.Inbound},
		}},
		Users: status.Users{ByHop: [status.MaxHop + 1]int{1, 3, 1, 0, 0, 0, 0}, Infinity: 2},
		Channels: []status.Channel{
			{ID: Channel, Messages: 1200, Bytes: 3 << 20, Newest: now.Add(-5 * time.Minute)},
			{ID: "rpc1Hq2Vt9mXw3nB7cL5kR8sZ4yD6pJ1aF3gE9uT2oW5iN7vQ", Messages: 34, Bytes: 81920, Newest: now.Add(-26 * time.Hour), Blocked: true},
			{ID: ControlChannel, Messages: 40, Bytes: 20480, Newest: now.Add(-time.Hour), Control: true},
		},
		Messages: status.Messages{Count: 1234, Bytes: 3<<20 + 81920, ControlCount: 40, ControlBytes: 20480},
		Counters: status.Counters{MessagesReceived: 5000, MessagesStored: 4000, MessagesDuplicate: 900, MessagesRelayed: 7000,
			MessagesRefused: map[string]uint64{"bad_signature": 3, "not_accepted": 97},
			Registrations:   map[string]uint64{"ok": 12, "bad_chain": 2},
			PairingAttempts: map[string]uint64{"paired": 1, "rejected": 4},
			BytesIn:         1 << 30, BytesOut: 2 << 30},
		Disk:           status.Disk{Path: "/var/lib/homenode", FreeBytes: 12 << 30, TotalBytes: 29 << 30},
		Memory:         status.Memory{RSSBytes: 41 << 20},
		CPUTempCelsius: &temp,
		Throttling:     status.Throttling{Known: true, UnderVoltageOccurred: true},
		Clock:          status.Clock{Synchronized: true, Source: "timesyncd"},
		Warnings:       []string{"Under-voltage happened since boot: use the official power supply."},
	}
}

// Waiting returns a report of a fresh node waiting for pairing, with an
// unsynchronised clock and no board sensors.
func Waiting() status.Report {
	r := Sample()
	r.Pairing = status.Pairing{State: status.PairingWaiting,
		URI: "redpanda://pair?n=" + PeerID + "&t=Zx4k9qPt2vLm8wQa3sJd"}
	r.Users = status.Users{}
	r.Channels = nil
	r.Messages = status.Messages{}
	r.CPUTempCelsius = nil
	r.Throttling = status.Throttling{}
	r.Clock = status.Clock{}
	r.Reachability = status.Reachability{Diagnosis: "behind CGNAT", Hint: "Your provider shares one address among many homes; the node uses a relay.", Relay: "reserved"}
	r.Warnings = nil
	return r
}
