package client

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/report"
)

// Node reports (docs/UPDATES.md): the home node this client owns posts
// what its owner should know ("updated to 1.2-1", "update to 1.2-1 failed
// after 1 try, back on 1.1-1") into the identity's master channel, with a
// write-only key the owner gave it (Nodes.ReportKey): it can post there and read
// nothing. A report counts only when its author is a node this client
// owns; the client keeps the last reports for Nodes.Reports.

const (
	bucketReports = "node-reports" // time(8)|message ID -> NodeReport JSON
	maxReports    = 100
)

// NodeReport is one report from an owned node.
type NodeReport struct {
	Node string `json:"node"` // the node's peer ID
	report.Report
}

// reportKey implements Nodes.ReportKey.
func (c *Client) reportKey() (string, error) {
	if _, err := c.byName(MasterChannel); err != nil {
		return "", fmt.Errorf("client.Nodes.ReportKey: %w", ErrNoMaster)
	}
	return c.shareChannel(MasterChannel, "write")
}

// nodeReports implements Nodes.Reports.
func (c *Client) nodeReports() ([]NodeReport, error) {
	var out []NodeReport
	err := c.db.Meta(bucketReports).ForEach(func(_, v []byte) error {
		var r NodeReport
		if json.Unmarshal(v, &r) == nil {
			out = append(out, r)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, err
}

// handleNodeReport keeps m if it is a report from an owned node; it says
// whether it was one. Called under procMu.
func (c *Client) handleNodeReport(m *channel.Message) bool {
	nodeID, err := c.ownedNode()
	if err != nil {
		return false
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return false
	}
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return false
	}
	raw, err := pub.Raw()
	if err != nil || !bytes.Equal(raw, m.Author[:]) {
		return false
	}
	r, err := report.Decode(m.Body)
	if err != nil {
		c.log.Warn("master channel: a message from the node that is not a report", "err", err)
		return true
	}
	rec, _ := json.Marshal(NodeReport{Node: nodeID, Report: r})
	key := binary.BigEndian.AppendUint64(nil, uint64(m.Timestamp.UnixMilli()))
	key = append(key, m.Body[:min(len(m.Body), 16)]...)
	meta := c.db.Meta(bucketReports)
	if err := meta.Put(key, rec); err != nil {
		c.log.Warn("node report not kept", "err", err)
		return true
	}
	c.log.Info("report from the home node", "node", nodeID, "text", r.Text)
	// Keep the newest maxReports.
	var keys [][]byte
	meta.ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil })
	for len(keys) > maxReports {
		meta.Delete(keys[0])
		keys = keys[1:]
	}
	return true
}
