package appliance

import "github.com/redpanda-p2p/homenode/status"

// splitMessages divides the store's totals into the channels people
// write in and the owner's control channels (status.Channel.Control).
func splitMessages(chans []status.Channel, count, bytes int64) status.Messages {
	m := status.Messages{Count: count, Bytes: bytes}
	for _, c := range chans {
		if c.Control {
			m.ControlCount += c.Messages
			m.ControlBytes += c.Bytes
		}
	}
	m.Count = max(0, m.Count-m.ControlCount)
	m.Bytes = max(0, m.Bytes-m.ControlBytes)
	return m
}

// counters gathers the totals since start from the node's parts.
func (a *Appliance) counters() status.Counters {
	t := a.node.Sync.Totals()
	in, out := a.bw.Totals()
	c := status.Counters{
		MessagesReceived:  t.Received,
		MessagesStored:    t.Stored,
		MessagesDuplicate: t.Duplicates,
		MessagesRelayed:   t.Relayed,
		MessagesRefused:   t.Refused,
		Registrations:     a.node.Registry.Decisions(),
		PairingAttempts:   map[string]uint64{},
		BytesIn:           uint64(max(in, 0)),
		BytesOut:          uint64(max(out, 0)),
	}
	if a.prov != nil {
		c.PairingAttempts = a.prov.Attempts()
	}
	return c
}
