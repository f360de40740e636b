// Package metrics exports the status report as Prometheus metrics named
// homenode_*, beside the Go runtime and process collectors.
//
// Every scrape reads one fresh status.Report, so /metrics, the page and
// `homenode status` always agree. It must not know where the figures come
// from: the appliance supplies a status.Source.
package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/redpanda-p2p/homenode/status"
)

// Namespace prefixes every metric this package defines.
const Namespace = "homenode"

// NewRegistry returns a registry with the report collector and the Go and
// process collectors, ready for promhttp.HandlerFor.
func NewRegistry(src status.Source) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		NewCollector(src, 5*time.Second),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return reg, nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	descInfo        = desc("build_info", "Always 1; the labels carry the version and peer ID.", "version", "peer_id")
	descUptime      = desc("uptime_seconds", "Seconds since the node started.")
	descPairing     = desc("pairing_state", "1 for the node's current pairing state, 0 for the others.", "state")
	descReachable   = desc("reachable", "1 when peers outside the home can reach the node.")
	descPeers       = desc("peers", "Connected peers.")
	descUsers       = desc("users", "Registered users by hop from the owner (inf: no ticket chain).", "hop")
	descChannels    = desc("channels_served", "Channels the node serves, by kind: people (conversations) or control (the owner's node and master channels, dust).", "kind")
	descMessages    = desc("store_messages", "Messages held in the store, by kind of channel (people, control).", "kind")
	descBytes       = desc("store_bytes", "Bytes of messages held in the store, by kind of channel (people, control).", "kind")
	descDiskFree    = desc("disk_free_bytes", "Free bytes on the data directory's file system.")
	descDiskTotal   = desc("disk_total_bytes", "Size in bytes of the data directory's file system.")
	descTemp        = desc("cpu_temperature_celsius", "CPU temperature; absent when the board has no sensor.")
	descThrottle    = desc("throttled", "Raspberry Pi firmware flags, 1 when set; absent on other boards.", "flag")
	descClockSynced = desc("clock_synchronized", "1 once the system clock is synchronised and timestamps are trusted.")
	descWarnings    = desc("warnings", "Warnings shown to the person looking after the node.")

	// Counters since the node started (they restart at 0 with it, which
	// rate() and increase() handle).
	descReceived  = desc("messages_received_total", "Messages that arrived from peers (fetched or pushed), whatever became of them.")
	descStored    = desc("messages_stored_total", "Messages newly stored (from peers and published here).")
	descDuplicate = desc("messages_duplicate_total", "Messages that arrived from a peer already held.")
	descRelayed   = desc("messages_relayed_total", "Messages sent on to peers (bodies they fetched, pushes).")
	descRefused   = desc("messages_refused_total", "Messages from peers refused by the relay rule, by reason.", "reason")
	descRegs      = desc("registrations_total", "Registration requests answered, by outcome: ok, or the reason of the refusal.", "outcome")
	descAttempts  = desc("pairing_attempts_total", "Pairing attempts, by outcome.", "outcome")
	descBytesIn   = desc("p2p_received_bytes_total", "Bytes received on libp2p streams.")
	descBytesOut  = desc("p2p_sent_bytes_total", "Bytes sent on libp2p streams.")
)

// Collector turns one status.Report per scrape into metrics.
type Collector struct {
	src     status.Source
	timeout time.Duration
}

// NewCollector reads src on every scrape, giving it timeout to answer.
func NewCollector(src status.Source, timeout time.Duration) *Collector {
	return &Collector{src: src, timeout: timeout}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUptime, descPairing, descReachable, descPeers,
		descUsers, descChannels, descMessages, descBytes, descDiskFree, descDiskTotal, descTemp,
		descThrottle, descClockSynced, descWarnings, descReceived, descStored, descDuplicate, descRelayed,
		descRefused, descRegs, descAttempts, descBytesIn, descBytesOut} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. When the report fails, the
// scrape carries the error instead of stale or zero figures.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	r, err := c.src.Report(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPeers, fmt.Errorf("metrics: status report: %w", err))
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descInfo, 1, r.Version, r.Node.PeerID)
	gauge(descUptime, r.Uptime.Seconds())
	for _, s := range status.PairingStates {
		gauge(descPairing, boolf(r.Pairing.State == s), string(s))
	}
	gauge(descReachable, boolf(r.Reachability.Reachable))
	gauge(descPeers, float64(r.Peers.Count))
	for _, h := range status.Hops() {
		gauge(descUsers, float64(r.Users.Count(h)), h.String())
	}
	people := status.People(r.Channels)
	gauge(descChannels, float64(people), "people")
	gauge(descChannels, float64(len(r.Channels)-people), "control")
	gauge(descMessages, float64(r.Messages.Count), "people")
	gauge(descMessages, float64(r.Messages.ControlCount), "control")
	gauge(descBytes, float64(r.Messages.Bytes), "people")
	gauge(descBytes, float64(r.Messages.ControlBytes), "control")
	gauge(descDiskFree, float64(r.Disk.FreeBytes))
	gauge(descDiskTotal, float64(r.Disk.TotalBytes))
	if r.CPUTempCelsius != nil {
		gauge(descTemp, *r.CPUTempCelsius)
	}
	if t := r.Throttling; t.Known {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"under_voltage", t.UnderVoltage},
			{"frequency_capped", t.FrequencyCapped},
			{"throttled", t.Throttled},
			{"soft_temp_limit", t.SoftTempLimit},
			{"under_voltage_occurred", t.UnderVoltageOccurred},
			{"throttled_occurred", t.ThrottledOccurred},
		} {
			gauge(descThrottle, boolf(f.set), f.name)
		}
	}
	gauge(descClockSynced, boolf(r.Clock.Synchronized))
	gauge(descWarnings, float64(len(r.Warnings)))

	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	t := r.Counters
	counter(descReceived, t.MessagesReceived)
	counter(descStored, t.MessagesStored)
	counter(descDuplicate, t.MessagesDuplicate)
	counter(descRelayed, t.MessagesRelayed)
	for _, m := range []struct {
		d      *prometheus.Desc
		counts map[string]uint64
	}{{descRefused, t.MessagesRefused}, {descRegs, t.Registrations}, {descAttempts, t.PairingAttempts}} {
		for label, v := range m.counts {
			counter(m.d, v, label)
		}
	}
	counter(descBytesIn, t.BytesIn)
	counter(descBytesOut, t.BytesOut)
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
