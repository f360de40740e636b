package peersync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

const (
	// hardQueueFactor times Config.QueueBytes is where a peer that does
	// not read its responses is disconnected.
	hardQueueFactor = 8
	// maxDetail bounds the human-readable text of a Reject.
	maxDetail = 256
	// closeFlushTimeout is how long a session that hit a protocol error
	// waits for its last Reject to go out.
	closeFlushTimeout = 2 * time.Second
)

// session is the one sync stream with one peer.
type session struct {
	svc     *Service
	peer    peer.ID
	started time.Time
	st      network.Stream
	c       *counters
	log     *slog.Logger

	mu       sync.Mutex
	q        [][]byte // encoded frames, length prefix included
	qKinds   []int
	qBytes   int // queued and being written
	closing  bool
	graceful bool // close with FIN after a protocol error's Reject
	closed   bool
	wants    map[channel.ID]struct{}
	hello    bool // the peer's Hello arrived
	// helloSent: our Hello is queued. An inbound session holds its Hello
	// (and the writer) until the peer's Hello says whether it is light,
	// so that a light client is not sent the node's whole want set.
	helloSent bool
	// light: the peer serves nobody and hears only about channels it
	// wants (Hello.light).
	light bool
	// discreet: the peer is told only about the channels it wants (our
	// Hello lists the channels both want, later Wants only those): a light
	// peer, or a node that opened the session and that this node did not
	// know when its Hello came (sendHeldHello).
	discreet    bool
	maxInFlight int
	reconciling map[channel.ID]*reconcileRun
	afterHello  []channel.ID // channels to reconcile once the peer's Hello arrives
	// toldFirst: channels this node came to want (Service.Want) while the
	// peer did not; when the peer's Want for one arrives, the two Wants
	// may have crossed, and this side reconciles it (onWant).
	toldFirst  map[channel.ID]struct{}
	pushes     map[uint64]chan error
	pushSeq    uint64
	closeErr   error
	writing    bool // a writer goroutine is draining q
	done       chan struct{}
	ingest     *ingestGate
	needResync atomic.Bool
	// clockWait is when (this node's clock, Unix ms) the earliest message
	// refused here as from the future becomes acceptable, 0 if none: the
	// session reconciles again then (Service.loop), so that what was
	// refused while this node's clock was behind, or the writer's ahead,
	// is fetched again once the clocks agree.
	clockWait    atomic.Int64
	openedByPeer bool
	// prefix is the remote address's network (IPv4 /24, IPv6 /48): the
	// unit in which sessions of peers the node does not know are bounded.
	prefix string
	// entitled: the peer is known to the node (Access.Known) or was
	// accepted for one of its wants. Until then the session holds no
	// wants and counts against the bounds on strangers' sessions.
	entitled bool
}

func newSession(s *Service, st network.Stream, c *counters) *session {
	return &session{
		svc: s, peer: st.Conn().RemotePeer(), st: st, c: c, started: time.Now(),
		log:          s.log.With("peer", st.Conn().RemotePeer().ShortString()),
		wants:        map[channel.ID]struct{}{},
		maxInFlight:  1,
		reconciling:  map[channel.ID]*reconcileRun{},
		pushes:       map[uint64]chan error{},
		done:         make(chan struct{}),
		ingest:       newIngestGate(s.cfg.IngestConcurrency, s.cfg.IngestBytes),
		openedByPeer: st.Stat().Direction == network.DirInbound,
		prefix:       addrPrefix(st.Conn().RemoteMultiaddr()),
	}
}

// enqueue queues a frame for the writer. A droppable frame (an
// announcement) is dropped past the soft limit and marks the session for
// a catch-up reconcile; any frame past the hard limit closes the session.
func (ss *session) enqueue(f *wirepb.Frame, droppable bool) bool {
	buf, err := wire.AppendMsgFrame(nil, f)
	if err != nil {
		ss.log.Error("marshal frame", "err", err)
		return false
	}
	return ss.enqueueFrame(buf, frameKind(f), droppable)
}

// Frame kinds (Frame oneof field numbers) named here: hand-encoded frames
// and those wire.ReadSync decodes without a Frame.
const (
	kindHello    = 1
	kindAnnounce = 3
	kindBody     = 5
	kindPush     = 7
	kindAck      = 8
)

// enqueueFrame is enqueue for a frame already encoded, length prefix
// included, of the given kind (its Frame field number).
func (ss *session) enqueueFrame(buf []byte, kind int, droppable bool) bool {
	ss.mu.Lock()
	if ss.closed || ss.closing {
		ss.mu.Unlock()
		return false
	}
	soft := ss.svc.cfg.QueueBytes
	if droppable && ss.qBytes+len(buf) > soft {
		ss.mu.Unlock()
		ss.c.dropped.Add(1)
		ss.needResync.Store(true)
		return false
	}
	if ss.qBytes+len(buf) > hardQueueFactor*soft {
		ss.mu.Unlock()
		ss.close(fmt.Errorf("%w: %d bytes queued", ErrPeerTooSlow, ss.qBytes))
		return false
	}
	ss.q = append(ss.q, buf)
	ss.qKinds = append(ss.qKinds, kind)
	ss.qBytes += len(buf)
	ss.mu.Unlock()
	ss.kick()
	return true
}

// sendHello puts our Hello frames at the head of the queue, before
// anything queued while it was held, and lets the writer go; only the
// first call counts. Callers that list wants hold the service lock, so
// that no Want can slip between the want set read for the Hello and
// helloSent. No queue limits: closing here would need that lock.
func (ss *session) sendHello(fs []*wirepb.Frame) {
	var bufs [][]byte
	var kinds []int
	n := 0
	for _, f := range fs {
		buf, err := wire.AppendMsgFrame(nil, f)
		if err != nil {
			continue
		}
		bufs = append(bufs, buf)
		kinds = append(kinds, frameKind(f))
		n += len(buf)
	}
	ss.mu.Lock()
	if ss.helloSent {
		ss.mu.Unlock()
		return
	}
	ss.q = append(bufs, ss.q...)
	ss.qKinds = append(kinds, ss.qKinds...)
	ss.qBytes += n
	ss.helloSent = true
	ss.mu.Unlock()
	ss.kick()
}

// writers lends write buffers to sessions for one batch at a time: an
// idle session holds none. Each session kept its own 64 KiB buffer, two
// thirds of a node's memory per idle light client.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// kick starts a writer for the queue unless one runs (or our Hello is
// still held). Writers come and go with the traffic: an idle session
// holds no goroutine for writing, which with thousands of idle light
// clients is a stack (and its growth) per client saved.
func (ss *session) kick() {
	ss.mu.Lock()
	if ss.writing || ss.closed || !ss.helloSent || len(ss.q) == 0 {
		ss.mu.Unlock()
		return
	}
	ss.writing = true
	ss.mu.Unlock()
	// On the service's ingest workers, whose stacks are already grown: a
	// goroutine of its own per batch grew its stack through Noise and
	// yamux and copied it every time (newstack and copystack, ~6 µs of
	// a light client's ~35 µs of CPU per push in rpbench ingest).
	if !ss.svc.workers.run(ss.writeLoop) {
		ss.mu.Lock()
		ss.writing = false // the service is closing
		ss.mu.Unlock()
	}
}

// writeLoop drains the queue in batches and ends when it is empty.
func (ss *session) writeLoop() {
	yielded := false
	for {
		ss.mu.Lock()
		if ss.closed || len(ss.q) == 0 {
			ss.writing = false
			ss.mu.Unlock()
			return
		}
		if len(ss.q) == 1 && !yielded {
			// One frame: let goroutines that are ready to run (pushers
			// woken by their acks, workers finishing a commit) queue
			// theirs first, once, so they share this write and its
			// syscall, Noise message and yamux frame.
			yielded = true
			ss.mu.Unlock()
			runtime.Gosched()
			continue
		}
		yielded = false
		q, kinds := ss.q, ss.qKinds
		ss.q, ss.qKinds = nil, nil
		ss.mu.Unlock()
		n, err := ss.writeBatch(q, kinds)
		if err != nil {
			ss.close(fmt.Errorf("sync: write to %s: %w", ss.peer, err))
			return
		}
		ss.mu.Lock()
		ss.qBytes -= n
		finish := ss.closing && len(ss.q) == 0
		err = ss.closeErr
		ss.mu.Unlock()
		if finish {
			// The last Reject is out: end with FIN, not RST, so the
			// peer can read why.
			ss.mu.Lock()
			ss.graceful = true
			ss.mu.Unlock()
			ss.close(err)
			return
		}
	}
}

// writeBatch writes and flushes q through a pooled buffer and returns the
// bytes written.
func (ss *session) writeBatch(q [][]byte, kinds []int) (int, error) {
	w := writers.Get().(*bufio.Writer)
	w.Reset(ss.st)
	defer func() {
		w.Reset(nil)
		writers.Put(w)
	}()
	n := 0
	for i, b := range q {
		if _, err := w.Write(b); err != nil {
			return n, err
		}
		n += len(b)
		ss.c.bytesOut.Add(uint64(len(b)))
		ss.c.framesOut[kinds[i]].Add(1)
		ss.svc.totals.sent(kinds[i])
	}
	return n, w.Flush()
}

// readers lends read buffers to sessions while frames arrive: an idle
// session waits for the next frame's first byte without one. A 4 KiB
// buffer per session was a sixth of the live heap per idle light client.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

func (ss *session) readLoop() {
	defer ss.svc.wg.Done()
	src := countingReader{r: ss.st, n: &ss.c.bytesIn}
	var r *bufio.Reader
	defer func() {
		if r != nil {
			r.Reset(nil)
			readers.Put(r)
		}
	}()
	pre := &prefixReader{r: src}
	for {
		var in wire.Incoming
		var err error
		if r == nil {
			if _, err = io.ReadFull(src, pre.first[:]); err == nil {
				pre.has = true
				r = readers.Get().(*bufio.Reader)
				r.Reset(pre)
			}
		}
		if err == nil {
			in, _, err = wire.ReadSync(r, wire.MaxFrameSize)
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				ss.close(nil)
			case errors.Is(err, wire.ErrMalformedFrame), errors.Is(err, wire.ErrFrameTooLarge):
				ss.fail(fmt.Errorf("%w: %w", ErrProtocol, err))
			default:
				ss.close(fmt.Errorf("sync: read from %s: %w", ss.peer, err))
			}
			return
		}
		if r.Buffered() == 0 {
			r.Reset(nil)
			readers.Put(r)
			r = nil
		}
		if in.Envelope != nil {
			err = ss.handleEnvelope(in)
		} else {
			ss.c.framesIn[frameKind(in.Frame)].Add(1)
			err = ss.handle(in.Frame)
		}
		if err != nil {
			ss.fail(err)
			return
		}
	}
}

// prefixReader yields a byte already read, then reads on from r.
type prefixReader struct {
	first [1]byte
	has   bool
	r     io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.first[0], false
		return 1, nil
	}
	return p.r.Read(b)
}

// fail ends the session after a protocol error: it tells the peer why in
// a Reject, lets the writer flush it, then closes the stream. Other
// streams and the connection are untouched.
func (ss *session) fail(err error) {
	ss.log.Info("closing sync stream", "err", err)
	// A held Hello goes out first, empty, so that a conforming peer can
	// read the Reject.
	ss.sendHello(ss.svc.helloFrames(nil))
	ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Reject{Reject: &wirepb.Reject{
		Reason: wirepb.Reason_REASON_MALFORMED, Detail: truncate(err.Error()),
	}}}, false)
	ss.mu.Lock()
	ss.closing, ss.closeErr = true, err
	empty := len(ss.q) == 0 && ss.qBytes == 0
	ss.mu.Unlock()
	if empty {
		ss.mu.Lock()
		ss.graceful = true
		ss.mu.Unlock()
		ss.close(err)
		return
	}
	ss.kick()
	time.AfterFunc(closeFlushTimeout, func() { ss.close(err) })
}

// close ends the session; err nil or ErrClosed is a clean end.
func (ss *session) close(err error) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	graceful := ss.graceful
	pushes := ss.pushes
	ss.pushes = nil
	ss.mu.Unlock()
	close(ss.done)
	if err == nil || errors.Is(err, ErrClosed) || graceful {
		_ = ss.st.Close()
	} else {
		_ = ss.st.Reset()
	}
	if err != nil {
		ss.log.Debug("sync session ended", "err", err)
	}
	for _, ch := range pushes {
		ch <- fmt.Errorf("%w: session with %s ended", ErrNoSession, ss.peer)
	}
	ss.svc.sessionEnded(ss)
}

func truncate(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail]
	}
	return s
}

func (ss *session) peerWants(ch channel.ID) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.wants[ch]
	return ok && ss.hello
}

func (ss *session) peerMaxInFlight() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.maxInFlight
}

func idBytes(chs []channel.ID) [][]byte {
	out := make([][]byte, len(chs))
	for i := range chs {
		out[i] = chs[i][:]
	}
	return out
}

// helloFrames is this side's Hello, with the want list continued in Want
// frames when it does not fit one frame.
func helloFrames(agent string, maxInFlight int, wants []channel.ID) []*wirepb.Frame {
	first := wants[:min(len(wants), wire.MaxIDsPerFrame)]
	out := []*wirepb.Frame{{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{
		Agent: agent, Want: idBytes(first), MaxInFlight: uint32(maxInFlight),
	}}}}
	for rest := wants[len(first):]; len(rest) > 0; {
		n := min(len(rest), wire.MaxIDsPerFrame)
		out = append(out, &wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes(rest[:n])}}})
		rest = rest[n:]
	}
	return out
}

// tellWant sends this node's want changes to the peer: to a full peer
// those for channels it may sync here (Access.Accept, as in the Hello),
// to a discreet one (light, or unknown: sendHeldHello) only those for
// channels it wants, nothing while our Hello is held (it is built from
// the want set later, so it carries these changes).
func (ss *session) tellWant(add, remove []channel.ID) {
	ss.mu.Lock()
	if !ss.helloSent {
		ss.mu.Unlock()
		return
	}
	discreet := ss.discreet
	if discreet {
		add, remove = ss.wantedLocked(add), ss.wantedLocked(remove)
	}
	ss.mu.Unlock()
	if !discreet {
		// Asked outside ss.mu: Accept may wait for a statement exchange.
		add, remove = ss.svc.mayOnly(ss.peer, add), ss.svc.mayOnly(ss.peer, remove)
	}
	ss.sendWant(add, remove)
}

// wantedLocked returns those of chs the peer wants.
func (ss *session) wantedLocked(chs []channel.ID) []channel.ID {
	var out []channel.ID
	for _, ch := range chs {
		if _, ok := ss.wants[ch]; ok {
			out = append(out, ch)
		}
	}
	return out
}

func (ss *session) sendWant(add, remove []channel.ID) {
	for len(add) > 0 || len(remove) > 0 {
		a, r := add[:min(len(add), wire.MaxIDsPerFrame)], remove[:min(len(remove), wire.MaxIDsPerFrame)]
		add, remove = add[len(a):], remove[len(r):]
		ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: idBytes(a), Remove: idBytes(r)}}}, false)
	}
}

func (ss *session) sendAnnounce(hs []wire.Header) {
	for len(hs) > 0 {
		n := min(len(hs), wire.MaxHeadersPerFrame)
		pb := make([]*wirepb.Header, n)
		for i := range n {
			pb[i] = wire.HeaderToPB(hs[i])
		}
		ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Announce{Announce: &wirepb.Announce{Headers: pb}}}, true)
		hs = hs[n:]
	}
}

func (ss *session) sendFetch(ids []channel.MessageID) {
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxIDsPerFrame)
		b := make([][]byte, n)
		for i := range n {
			b[i] = ids[i][:]
		}
		ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Fetch{Fetch: &wirepb.Fetch{Ids: b}}}, false)
		ids = ids[n:]
	}
}

func (ss *session) sendReject(seq uint64, id *channel.MessageID, err error) {
	rj := &wirepb.Reject{Seq: seq, Reason: reasonFor(err), Detail: truncate(err.Error())}
	if id != nil {
		rj.Id = id[:]
	}
	ss.c.rejected.Add(1)
	ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_Reject{Reject: rj}}, false)
}

// helloOrder checks that the peer's first frame, and only that one, is
// its Hello.
func (ss *session) helloOrder(kind int) error {
	ss.mu.Lock()
	hello := ss.hello
	ss.mu.Unlock()
	if isHello := kind == kindHello; isHello == hello {
		if hello {
			return fmt.Errorf("%w: second hello", ErrProtocol)
		}
		return fmt.Errorf("%w: first frame is %s, not hello", ErrProtocol, frameKinds[kind])
	}
	return nil
}

// handleEnvelope acts on a Push or Body that wire.ReadSync decoded
// straight into its envelope, as handle acts on the same frame decoded
// into protobuf structs.
func (ss *session) handleEnvelope(in wire.Incoming) error {
	kind := kindBody
	if in.Push {
		kind = kindPush
	}
	ss.c.framesIn[kind].Add(1)
	if err := ss.helloOrder(kind); err != nil {
		return err
	}
	if in.Push {
		ss.pushed(in.Seq, in.Envelope)
	} else {
		ss.delivered(in.Envelope)
	}
	return nil
}

// handle acts on one frame. An error is a protocol violation that ends the
// session; a bad message inside a good frame is answered and survived.
func (ss *session) handle(f *wirepb.Frame) error {
	if err := ss.helloOrder(frameKind(f)); err != nil {
		return err
	}
	switch k := f.GetKind().(type) {
	case *wirepb.Frame_Hello:
		return ss.onHello(k.Hello)
	case *wirepb.Frame_Want:
		return ss.onWant(k.Want.GetAdd(), k.Want.GetRemove())
	case *wirepb.Frame_Announce:
		offers := make([]offer, 0, len(k.Announce.GetHeaders()))
		for _, h := range k.Announce.GetHeaders() {
			hd, _ := wire.HeaderFromPB(h) // checked by DecodeFrame
			if ss.svc.Wants(hd.Channel) && ss.svc.accept(ss.peer, hd.Channel) {
				offers = append(offers, offer{id: hd.ID, ch: hd.Channel, size: int(hd.Size)})
			}
		}
		if len(offers) > 0 {
			ss.svc.fetch.offer(ss.peer, offers)
		}
	case *wirepb.Frame_Fetch:
		ss.onFetch(k.Fetch.GetIds())
	case *wirepb.Frame_Body:
		ss.onBody(k.Body.GetEnvelope())
	case *wirepb.Frame_NotFound:
		ids := make([]channel.MessageID, 0, len(k.NotFound.GetIds()))
		for _, b := range k.NotFound.GetIds() {
			id, _ := wire.MessageID(b)
			ids = append(ids, id)
		}
		ss.svc.fetch.notFound(ss.peer, ids)
	case *wirepb.Frame_Push:
		ss.onPush(k.Push.GetSeq(), k.Push.GetEnvelope())
	case *wirepb.Frame_Ack:
		ss.resolvePush(k.Ack.GetSeq(), nil)
	case *wirepb.Frame_Reject:
		rj := k.Reject
		var id channel.MessageID
		copy(id[:], rj.GetId())
		if rj.GetSeq() != 0 {
			ss.resolvePush(rj.GetSeq(), &RejectError{ID: id, Reason: rj.GetReason(), Detail: rj.GetDetail()})
		} else {
			// Debug: a hostile peer must not be able to flood the journal.
			ss.log.Debug("peer rejected a message", "id", id, "reason", rj.GetReason(), "detail", rj.GetDetail())
		}
	case *wirepb.Frame_Reconcile:
		return ss.onReconcile(k.Reconcile)
	}
	return nil
}

func (ss *session) onHello(h *wirepb.Hello) error {
	ss.mu.Lock()
	ss.light = h.GetLight()
	ss.maxInFlight = max(1, int(h.GetMaxInFlight()))
	ss.mu.Unlock()
	ss.log.Debug("hello", "agent", h.GetAgent(), "wants", len(h.GetWant()), "light", h.GetLight())
	if err := ss.setWants(h.GetWant(), nil); err != nil {
		return err
	}
	// Our held Hello goes out before hello is set, so that no
	// announcement or reconcile can overtake it.
	ss.svc.sendHeldHello(ss)
	ss.mu.Lock()
	ss.hello = true
	after := ss.afterHello
	ss.afterHello = nil
	ss.mu.Unlock()
	// The opener reconciles everything shared; the other side only what
	// it started wanting while the Hello was on its way.
	if !ss.openedByPeer {
		ss.reconcileShared(nil)
	} else if len(after) > 0 {
		ss.reconcileShared(after)
	}
	return nil
}

// noteToldFirst marks those of chs, channels this node just came to want,
// that the peer does not want (toldFirst).
func (ss *session) noteToldFirst(chs []channel.ID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, ch := range chs {
		if _, ok := ss.wants[ch]; ok {
			continue
		}
		if ss.toldFirst == nil {
			ss.toldFirst = map[channel.ID]struct{}{}
		}
		ss.toldFirst[ch] = struct{}{}
	}
}

// forgetToldFirst drops chs from toldFirst (this node no longer wants them).
func (ss *session) forgetToldFirst(chs []channel.ID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, ch := range chs {
		delete(ss.toldFirst, ch)
	}
}

// takeToldFirst reports whether ch was in toldFirst, and drops it.
func (ss *session) takeToldFirst(ch channel.ID) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.toldFirst[ch]
	delete(ss.toldFirst, ch)
	return ok
}

// onWant applies a peer's Want. A discreet peer (a light one, or a node
// this node did not know) was told only about the channels it wanted, so
// when it comes to want one this node serves, the
// node tells it now and reconciles the channel: without this, both sides
// coming to want a channel after their Hellos would never learn of it.
// A full peer was told (Want) when this node came to want the channel,
// but when both come to want it at once, each side's own Want finds the
// other not wanting it yet and reconciles nothing: so a side that came to
// want a channel the peer did not (toldFirst) reconciles it when the
// peer's Want for it arrives.
func (ss *session) onWant(add, remove [][]byte) error {
	if err := ss.setWants(add, remove); err != nil {
		return err
	}
	ss.mu.Lock()
	discreet := ss.discreet
	ss.mu.Unlock()
	if len(add) == 0 {
		return nil
	}
	if !discreet {
		var shared []channel.ID
		for _, b := range add {
			ch, _ := wire.ChannelID(b)
			if ss.takeToldFirst(ch) && ss.svc.Wants(ch) && ss.peerWants(ch) && !slices.Contains(shared, ch) {
				shared = append(shared, ch)
			}
		}
		if len(shared) > 0 {
			ss.reconcileShared(shared)
		}
		return nil
	}
	var shared []channel.ID
	for _, b := range add {
		ch, _ := wire.ChannelID(b)
		// Only wants that were kept: a peer may not learn which channels
		// the node serves by asking for them.
		if ss.svc.Wants(ch) && ss.peerWants(ch) && !slices.Contains(shared, ch) {
			shared = append(shared, ch)
		}
	}
	if len(shared) > 0 {
		ss.sendWant(shared, nil)
		ss.reconcileShared(shared)
	}
	return nil
}

// setWants records the peer's want changes, and then tells the service's
// index of who wants what (the session's reader is the only caller, so the
// index sees the changes in order).
//
// A want is kept only for a channel the peer may sync with this node (the
// Accept policy: a registered user, a configured peer, a super node that
// proved it serves the channel), and only within Config.MaxWantsPerPeer
// for the session and Config.MaxWants over all sessions: a stranger that
// declares tens of thousands of channels leaves nothing behind. Wants
// refused here come back when the peer is entitled later (Resync).
func (ss *session) setWants(add, remove [][]byte) error {
	var removed []channel.ID
	ss.mu.Lock()
	for _, b := range remove {
		ch, _ := wire.ChannelID(b)
		if _, ok := ss.wants[ch]; ok {
			delete(ss.wants, ch)
			removed = append(removed, ch)
		}
	}
	ss.mu.Unlock()
	ss.svc.wantTotal.Add(-int64(len(removed)))
	var cands []channel.ID
	for _, b := range add {
		ch, _ := wire.ChannelID(b)
		cands = append(cands, ch)
	}
	// Asked outside ss.mu: Accept may wait for a statement exchange.
	ss.addWants(cands, removed)
	return nil
}

// addWants keeps those of chs the peer is entitled to, within the bounds,
// and updates the index with them and with removed.
func (ss *session) addWants(chs, removed []channel.ID) {
	svc := ss.svc
	var ok []channel.ID
	for _, ch := range chs {
		if svc.accept(ss.peer, ch) {
			ok = append(ok, ch)
		}
	}
	var added []channel.ID
	refused := 0
	ss.mu.Lock()
	if ss.closed {
		// wanters.drop has run or is running: nothing may be added.
		ss.mu.Unlock()
		svc.wanters.update(ss, nil, removed)
		return
	}
	for _, ch := range ok {
		if _, had := ss.wants[ch]; had {
			continue
		}
		if len(ss.wants) >= svc.cfg.MaxWantsPerPeer {
			refused++
			continue
		}
		if svc.wantTotal.Add(1) > int64(svc.cfg.MaxWants) {
			svc.wantTotal.Add(-1)
			refused++
			continue
		}
		ss.wants[ch] = struct{}{}
		added = append(added, ch)
	}
	if len(ok) > 0 {
		ss.entitled = true
	}
	ss.mu.Unlock()
	if refused > 0 {
		ss.log.Debug("wants over the bound not kept", "refused", refused,
			"per_peer", svc.cfg.MaxWantsPerPeer, "total", svc.cfg.MaxWants)
	}
	if ignored := len(chs) - len(ok); ignored > 0 {
		ss.log.Debug("wants for channels the peer may not sync ignored", "ignored", ignored)
	}
	svc.wanters.update(ss, added, removed)
}

func (ss *session) onFetch(ids [][]byte) {
	if ss.svc.ignoreFetch.Load() {
		return
	}
	var missing [][]byte
	for _, b := range ids {
		id, _ := wire.MessageID(b)
		raw, err := ss.svc.db.GetRaw(id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				ss.log.Warn("serving fetch", "id", id, "err", err)
			}
			missing = append(missing, b)
			continue
		}
		// The stored bytes go out re-framed, not decoded into an
		// envelope and encoded again through protobuf.
		e, err := channel.ViewEnvelope(raw)
		if err != nil || !ss.svc.accept(ss.peer, e.Channel) {
			missing = append(missing, b)
			continue
		}
		if !ss.enqueueFrame(wire.AppendBodyFrame(nil, &e), kindBody, false) {
			return
		}
	}
	if len(missing) > 0 {
		ss.enqueue(&wirepb.Frame{Kind: &wirepb.Frame_NotFound{NotFound: &wirepb.NotFound{Ids: missing}}}, false)
	}
}

func (ss *session) onBody(pe *wirepb.Envelope) {
	e, err := wire.EnvelopeFromPB(pe)
	if err != nil {
		ss.sendReject(0, nil, err)
		return
	}
	ss.delivered(e)
}

// delivered takes a fetched body, decoded and checked by the wire.
func (ss *session) delivered(e *channel.Envelope) {
	id := e.ID()
	switch ss.svc.fetch.claim(ss.peer, id) {
	case claimLate:
		return
	case claimUnsolicited:
		ss.sendReject(0, &id, fmt.Errorf("%w: body %s", ErrNotRequested, id))
		return
	}
	ss.ingestAsync(e.Size(), func() {
		_, err := ss.svc.ingest(ss.peer, e)
		ss.svc.fetch.finish(id, err)
		if err != nil && !errors.Is(err, store.ErrExists) {
			ss.log.Debug("fetched message refused", "id", id, "err", err)
			ss.refusedForClock(e, err)
			ss.sendReject(0, &id, err)
		}
	})
}

// refusedForClock notes a message refused as from the future (err), so
// that the session reconciles again when this node's clock reaches its
// timestamp less the allowed skew. Nothing else would fetch it again: the
// fetch is over, the peer counts it as offered, and a session reconciles
// only when it starts or drops announcements. A node whose clock was a
// day behind refused a day's posts and, once NTP put it right, never got
// them (issue 23's skew phase).
func (ss *session) refusedForClock(e *channel.Envelope, err error) {
	if !errors.Is(err, channel.ErrFromFuture) {
		return
	}
	at := e.Timestamp - ss.skewMs()
	for {
		cur := ss.clockWait.Load()
		if cur != 0 && cur <= at {
			return
		}
		if ss.clockWait.CompareAndSwap(cur, at) {
			return
		}
	}
}

func (ss *session) onPush(seq uint64, pe *wirepb.Envelope) {
	e, err := wire.EnvelopeFromPB(pe)
	if err != nil {
		ss.sendReject(seq, nil, err)
		return
	}
	ss.pushed(seq, e)
}

// pushed takes a pushed message, decoded and checked by the wire.
func (ss *session) pushed(seq uint64, e *channel.Envelope) {
	ss.ingestAsync(e.Size(), func() {
		id, err := ss.svc.ingest(ss.peer, e)
		if err != nil {
			ss.refusedForClock(e, err)
			ss.sendReject(seq, &id, err)
			return
		}
		ss.enqueueFrame(wire.AppendAckFrame(nil, seq, id), kindAck, false)
	})
}

// push sends a Push and waits for its Ack or Reject.
func (ss *session) push(ctx context.Context, e *channel.Envelope) error {
	ch := make(chan error, 1)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return ErrNoSession
	}
	ss.pushSeq++
	seq := ss.pushSeq
	ss.pushes[seq] = ch
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		if ss.pushes != nil {
			delete(ss.pushes, seq)
		}
		ss.mu.Unlock()
	}()
	if !ss.enqueueFrame(wire.AppendPushFrame(nil, seq, e), kindPush, false) {
		return fmt.Errorf("%w: %s", ErrNoSession, ss.peer)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ss *session) resolvePush(seq uint64, err error) {
	ss.mu.Lock()
	ch := ss.pushes[seq]
	if ch != nil {
		delete(ss.pushes, seq)
	}
	ss.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// peerWantsKnown reports whether the peer's Hello has arrived.
func (ss *session) peerWantsKnown() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.hello
}

// queued is the bytes queued or being written to the peer.
func (ss *session) queued() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.qBytes
}
