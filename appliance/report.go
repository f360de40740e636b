package appliance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-p2p/homenode/appliance/portmap"
	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/provisioning"
	"github.com/redpanda-p2p/homenode/status"
)

// Report implements status.Source.
func (a *Appliance) Report(ctx context.Context) (status.Report, error) {
	n := a.node
	r := status.Report{
		GeneratedAt:  time.Now(),
		Node:         status.Node{PeerID: n.Host.ID().String(), Addresses: n.Addrs()},
		Version:      a.opts.Version,
		Uptime:       time.Since(a.started),
		Clock:        status.Clock{Synchronized: a.clockOK.Load()},
		Reachability: a.reachability(),
	}
	if a.board != nil {
		r.Board = a.board.String()
	}
	r.Pairing = a.pairingReport()
	peers, _ := a.Peers(ctx)
	r.Peers = status.Peers{Count: len(peers), List: peers}
	for _, u := range a.node.Registry.Users() {
		if u.Hop == routing.HopInfinity {
			r.Users.Infinity++
		} else if u.Hop >= 0 && u.Hop <= status.MaxHop {
			r.Users.ByHop[u.Hop]++
		}
	}
	chans, err := a.Channels(ctx)
	if err != nil {
		return r, err
	}
	r.Channels = chans
	st, err := n.Store.Stats()
	if err != nil {
		return r, fmt.Errorf("store: %w", err)
	}
	r.Messages = splitMessages(chans, int64(st.Messages), st.Bytes)
	r.Counters = a.counters()
	r.Update = a.updateReport()
	if a.health != nil {
		snap, err := a.health.Snapshot(ctx)
		if err != nil {
			a.log.Debug("health snapshot", "err", err)
		}
		r.Disk = status.Disk{Path: a.cfg.DataDir, FreeBytes: snap.Disk.FreeBytes, TotalBytes: snap.Disk.TotalBytes}
		r.Memory = status.Memory{RSSBytes: snap.Process.RSSBytes}
		if snap.Board.TempKnown {
			c := snap.Board.Celsius
			r.CPUTempCelsius = &c
		}
		if snap.Board.ThrottleKnown {
			t := snap.Board.Throttle
			r.Throttling = status.Throttling{
				Known:                true,
				UnderVoltage:         t.Has(board.UnderVoltage),
				FrequencyCapped:      t.Has(board.FrequencyCapped),
				Throttled:            t.Has(board.Throttled),
				SoftTempLimit:        t.Has(board.SoftTempLimit),
				UnderVoltageOccurred: t.Has(board.UnderVoltageBoot),
				ThrottledOccurred:    t.Has(board.ThrottledBoot),
			}
		}
		r.Clock.Source = snap.Clock.Source
		for _, w := range snap.Warnings {
			r.Warnings = append(r.Warnings, w.Message)
		}
	}
	r.Warnings = append(r.Warnings, a.storageWarnings()...)
	return r, nil
}

// reachability combines the port mapper's diagnosis with AutoNAT's
// verdict and the relay state into the report's words.
func (a *Appliance) reachability() status.Reachability {
	r := a.upnpReachability()
	if a.reach == nil {
		return r
	}
	st := a.reach.Status()
	switch {
	case st.RelayServing:
		r.Relay = "serving registered users"
	case len(st.Relays) > 0:
		r.Relay = fmt.Sprintf("reachable through %d relay(s), first %s", len(st.Relays), st.Relays[0].ShortString())
	case a.cfg.Relay && st.State() == "private":
		r.Relay = "searching for a relay"
	case a.cfg.Relay:
		r.Relay = "not needed"
	default:
		r.Relay = "off"
	}
	if st.State() == "public" {
		r.Reachable = true
		if !strings.HasPrefix(r.Diagnosis, "reachable") {
			r.Diagnosis = "reachable (confirmed by other nodes)"
			r.Hint = ""
		}
	} else if len(st.Relays) > 0 && !r.Reachable {
		r.Reachable = true
		r.Diagnosis += "; reachable through a relay"
	}
	return r
}

// upnpReachability is the port mapper's diagnosis in the report's words
// (portmap.Diagnosis.Summary, Hint).
func (a *Appliance) upnpReachability() status.Reachability {
	if a.mapper == nil {
		return status.Reachability{Diagnosis: portmap.OffSummary, Hint: portmap.OffHint}
	}
	d := a.mapper.Diagnosis()
	r := status.Reachability{Reachable: d.Status == portmap.StatusMapped, Diagnosis: d.Summary(), Hint: d.Hint,
		ExternalAddr: d.ExternalAddr()}
	if d.Status == portmap.StatusMapped {
		r.Hint = ""
	}
	return r
}

func (a *Appliance) pairingReport() status.Pairing {
	switch a.prov.State() {
	case provisioning.StateWaiting:
		uri, _ := a.prov.URI()
		return status.Pairing{State: status.PairingWaiting, URI: uri}
	case provisioning.StateOwned:
		o, _ := a.prov.Owner()
		return status.Pairing{State: status.PairingOwned, Owner: ownerString(o)}
	}
	return status.Pairing{State: status.PairingNew}
}

var _ status.Source = (*Appliance)(nil)
