package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

// A node killed with SIGKILL (a crash, a power cut) closes nothing: over
// QUIC the client keeps a connection that nothing ends until QUIC's idle
// timeout (30 s; its keep-alive, every 15 s, ends it sooner only once the
// node is back), and while it is open keepConnected sees no reason to
// redial. So the client pings each node connection every
// Config.ProbeInterval and closes one that does not answer within
// probeTimeout, twice in a row (one late answer on a busy machine is not
// a dead node). A node restarted on its address answers the first ping at
// once with a QUIC stateless reset (the reset key comes from the node's
// identity), which ends the connection within a round trip. The interval
// bounds how long a running app stays deaf after its node is back (within
// 5 s, redial and re-registration included, at the default); a ping is
// two small packets, 20 a minute per node, where QUIC's own keep-alive
// sends 4. On an idle connected phone they are about half its wake-ups
// (BenchmarkPhoneIdle in mobile/redpanda), hence the knob.
const (
	// DefaultProbeInterval is Config.ProbeInterval's default.
	DefaultProbeInterval = 3 * time.Second
	probeTimeout         = 2 * time.Second
)

// probe pings each connection to p (not dialling any) and closes those
// that do not answer within probeTimeout. It reports whether it closed
// one: the node was gone, or came back as a new process.
func (c *Client) probe(ctx context.Context, p peer.ID) (closed bool) {
	c.forgetPingStreams(p)
	conns := c.h.Network().ConnsToPeer(p)
	dead := make(chan bool, len(conns))
	for _, cn := range conns {
		go func() {
			err := c.pingConn(ctx, cn)
			if err != nil && !cn.IsClosed() && ctx.Err() == nil {
				// No answer, but no reset either: a busy moment on
				// either side is not a dead node, so once more.
				err = c.pingConn(ctx, cn)
			}
			if err == nil || ctx.Err() != nil || errors.Is(err, network.ErrResourceLimitExceeded) {
				dead <- false
				return
			}
			c.log.Info("closing a node connection that did not answer a ping", "node", p, "addr", cn.RemoteMultiaddr(), "err", err)
			_ = cn.Close()
			dead <- true
		}()
	}
	for range conns {
		if <-dead {
			closed = true
		}
	}
	return closed
}

// pingConn runs one ping (the libp2p ping protocol, which every node
// serves) on cn itself, so that a dead connection cannot hide behind a
// live one to the same node. The stream stays open for the next probe
// (the ping protocol answers any number of pings on one stream, and the
// node waits 10 s for the next): a new stream per ping, its negotiation
// and reset cost a phone about twice the wake-ups of everything else it
// does while idle (BenchmarkPhoneIdle in mobile/redpanda). The protocol is
// selected lazily, so the first ping costs one round trip too.
func (c *Client) pingConn(ctx context.Context, cn network.Conn) (err error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ps, err := c.pingStream(ctx, cn)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.dropPingStream(cn, ps)
		}
	}()
	deadline, _ := ctx.Deadline()
	_ = ps.s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = ps.s.Reset() })
	defer stop()
	out := make([]byte, ping.PingSize)
	if _, err := rand.Read(out); err != nil {
		return err
	}
	start := time.Now()
	if _, err := ps.rw.Write(out); err != nil {
		return err
	}
	in := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(ps.rw, in); err != nil {
		return err
	}
	if !bytes.Equal(in, out) {
		return errors.New("ping answered with other bytes")
	}
	_ = ps.s.SetDeadline(time.Time{})
	c.mu.Lock()
	c.rtt[cn.RemotePeer().String()] = time.Since(start)
	c.mu.Unlock()
	return nil
}

// pingStream is a connection's open ping stream.
type pingStream struct {
	s  network.Stream
	rw io.ReadWriter // s, with the protocol selected on first use
}

// pingStream returns cn's ping stream, opening one if it has none.
func (c *Client) pingStream(ctx context.Context, cn network.Conn) (*pingStream, error) {
	c.mu.Lock()
	ps := c.probes.streams[cn.ID()]
	c.mu.Unlock()
	if ps != nil {
		return ps, nil
	}
	s, err := cn.NewStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(ping.ID); err != nil {
		_ = s.Reset()
		return nil, err
	}
	ps = &pingStream{s: s, rw: msmux.NewMSSelect(s, ping.ID)}
	c.mu.Lock()
	if c.probes.streams == nil {
		c.probes.streams = map[string]*pingStream{}
	}
	c.probes.streams[cn.ID()] = ps
	c.mu.Unlock()
	return ps, nil
}

// dropPingStream resets ps and forgets it: after a failed ping the stream
// is in no state to be used again.
func (c *Client) dropPingStream(cn network.Conn, ps *pingStream) {
	_ = ps.s.Reset()
	c.mu.Lock()
	if c.probes.streams[cn.ID()] == ps {
		delete(c.probes.streams, cn.ID())
	}
	c.mu.Unlock()
}

// forgetPingStreams forgets the ping streams of p's connections that are
// closed.
func (c *Client) forgetPingStreams(p peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ps := range c.probes.streams {
		if ps.s.Conn().RemotePeer() == p && ps.s.Conn().IsClosed() {
			delete(c.probes.streams, id)
		}
	}
}

// probeState says which nodes have a prober running.
type probeState struct {
	running map[peer.ID]bool
	streams map[string]*pingStream // by connection ID
}

// keepProbing starts, unless one runs, a prober of p: it probes p every
// Config.ProbeInterval while p is connected, and ends once it is not (after its
// probe closed the connection keepConnected dials again and calls this
// again). keepConnected calls it for each connected node on each round;
// the prober keeps its own time, so that keepConnected need not wake for
// it.
func (c *Client) keepProbing(p peer.ID) {
	c.mu.Lock()
	if c.probes.running == nil {
		c.probes.running = map[peer.ID]bool{}
	}
	if c.closed || c.probes.running[p] || c.cfg.ProbeInterval < 0 {
		c.mu.Unlock()
		return
	}
	c.probes.running[p] = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer func() {
			c.forgetPingStreams(p)
			c.mu.Lock()
			delete(c.probes.running, p)
			c.mu.Unlock()
		}()
		t := time.NewTimer(c.cfg.ProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
			if len(c.h.Network().ConnsToPeer(p)) == 0 {
				return
			}
			c.probe(c.ctx, p)
			t.Reset(c.cfg.ProbeInterval)
		}
	}()
}
