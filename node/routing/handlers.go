package routing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/internal/peerlimit"
	"github.com/redpanda-p2p/homenode/node/wire"
)

// The registration protocol's stream handlers: reading a request and
// answering it (handle, serve) and telling clients why their registration
// ended (sendNotices, deliver). What is decided is policy.go's.

func (r *Registry) handle(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	remote := s.Conn().RemotePeer()
	resp, notices, changed := r.serve(s, remote, peerlimit.ConnKey(s.Conn()))
	r.decided.add(resp.Status)
	// The change hooks run before the answer, so that a client told "OK"
	// finds its channels already served.
	if changed {
		r.changed()
	}
	b, err := resp.encode()
	if err == nil {
		err = wire.WriteFrame(s, b)
	}
	if err != nil {
		r.log.Debug("could not answer a registration", "peer", remote, "err", err)
	}
	r.sendNotices(notices)
}

// serve reads one request and decides it.
func (r *Registry) serve(s io.Reader, remote peer.ID, addr string) (response, []outNotice, bool) {
	refuse := func(st Status, format string, a ...any) (response, []outNotice, bool) {
		r.log.Info("registration refused", "peer", remote, "status", st.String(), "detail", fmt.Sprintf(format, a...))
		return response{Status: st, Detail: fmt.Sprintf(format, a...), Load: r.Load()}, nil, false
	}
	// Read before answering even a rate-limited peer, so the answer is not
	// lost to a reset of the unread request.
	b, err := wire.ReadFrame(s, MaxRequestSize)
	if ok, what := r.limits.allow(remote, addr, r.Registered(remote)); !ok {
		return refuse(StatusRateLimited, "too many requests from %s; wait a minute", what)
	}
	if err != nil {
		return refuse(StatusMalformed, "reading request: %v", err)
	}
	req, err := decodeRequest(b)
	if err != nil {
		return refuse(StatusMalformed, "%v", err)
	}
	if req.Peer != remote {
		return refuse(StatusBadSignature, "request is bound to peer %s but came from %s", req.Peer, remote)
	}
	if !req.verifySignature() {
		return refuse(StatusBadSignature, "request signature does not verify for %s", req.Identity)
	}
	return r.admit(req)
}

// sendNotices tells connected clients at once why their registration
// ended; a notice that cannot be delivered stays pending for the client's
// next Register.
func (r *Registry) sendNotices(ns []outNotice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, o := range ns {
		if r.h.Network().Connectedness(o.peer) != network.Connected {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.deliver(o.peer, o.n); err != nil {
				r.log.Debug("notice not delivered; kept for the next Register", "peer", o.peer, "err", err)
				return
			}
			r.log.Info("notice delivered", "identity", o.id, "status", o.n.Status.String())
			r.mu.Lock()
			defer r.mu.Unlock()
			// Only this notice: a newer one waits for its own delivery.
			if pn, ok := r.pending[o.id]; ok && pn.At.Equal(o.n.At) && pn.Status == o.n.Status {
				r.clearPendingLocked(o.id)
			}
		}()
	}
}

func (r *Registry) deliver(to peer.ID, n Notice) error {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := r.h.NewStream(network.WithAllowLimitedConn(network.WithNoDial(ctx, "registration notice"), "redpanda"), to, NoticeProtocolID)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	b, err := encodeNotice(n)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(s, b); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	// The client closes after reading: EOF is the receipt.
	var one [1]byte
	if _, err := s.Read(one[:]); !errors.Is(err, io.EOF) {
		return fmt.Errorf("no receipt: %v", err)
	}
	return nil
}
