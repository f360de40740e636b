package client

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multiaddr"
)

// Kinds of Event. Text messages are not events: Subscribe delivers them.
const (
	// EventNodeConnected: the first connection to a node came up (Node;
	// Detail is its address).
	EventNodeConnected = "node-connected"
	// EventNodeDisconnected: the last connection to a node went down
	// (Node).
	EventNodeDisconnected = "node-disconnected"
	// EventRegistrationEnded: a node ended this client's registration
	// (Node; Detail says why). The client registers again elsewhere.
	EventRegistrationEnded = "registration-ended"
	// EventReceipt: a reader posted a delivery receipt for a message
	// (MessageID, Reader).
	EventReceipt = "receipt"
)

// Event is something that happened to the client besides a message: a
// node connection, a registration, a delivery receipt. Fields a kind
// does not use are empty.
type Event struct {
	Kind      string
	Node      string // peer ID of the node
	MessageID string // hex
	Reader    string // identity ("rpi…") that read MessageID
	Detail    string
	Time      time.Time
}

// eventState is a client's event subscribers and the connections it has
// reported, kept beside the Client (as lookupState is) from the first
// Events call until it closes, so a client nobody asks for events costs
// nothing.
type eventState struct {
	mu        sync.Mutex
	closed    bool
	subs      map[*eventSub]struct{}
	connected map[string]string // peer ID -> address, of the peers reported connected
}

var eventStates sync.Map // *Client -> *eventState

// Events returns the events from now on, in the order they happen, and a
// function that ends the subscription. It starts with a node-connected
// event for each node connected now, so the subscriber's view is whole.
// The channel closes when the client does. A slow reader never stalls
// the client: events queue for it.
func (c *Client) Events() (<-chan Event, func(), error) {
	if c.isClosed() {
		return nil, nil, ErrClosed
	}
	st := c.eventState()
	s := &eventSub{wake: make(chan struct{}, 1), done: make(chan struct{}), out: make(chan Event)}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, nil, ErrClosed
	}
	now := c.cfg.Now()
	for p, addr := range st.connected {
		s.push(Event{Kind: EventNodeConnected, Node: p, Detail: addr, Time: now})
	}
	st.subs[s] = struct{}{}
	st.mu.Unlock()
	go s.run()
	return s.out, func() {
		st.mu.Lock()
		delete(st.subs, s)
		st.mu.Unlock()
		s.stop()
	}, nil
}

// eventState returns the client's event state, making it (and starting to
// watch connections) on the first call.
func (c *Client) eventState() *eventState {
	if v, ok := eventStates.Load(c); ok {
		return v.(*eventState)
	}
	st := &eventState{subs: map[*eventSub]struct{}{}, connected: map[string]string{}}
	v, loaded := eventStates.LoadOrStore(c, st)
	if loaded {
		return v.(*eventState)
	}
	connected := func(n network.Network, conn network.Conn) {
		p := conn.RemotePeer().String()
		st.mu.Lock()
		_, known := st.connected[p]
		if !known {
			st.connected[p] = addrString(conn.RemoteMultiaddr())
		}
		st.mu.Unlock()
		if !known {
			c.emit(Event{Kind: EventNodeConnected, Node: p, Detail: addrString(conn.RemoteMultiaddr())})
		}
	}
	nb := &network.NotifyBundle{
		ConnectedF: connected,
		DisconnectedF: func(n network.Network, conn network.Conn) {
			p := conn.RemotePeer()
			if n.Connectedness(p) == network.Connected {
				return // another connection to it is still up
			}
			st.mu.Lock()
			_, was := st.connected[p.String()]
			delete(st.connected, p.String())
			st.mu.Unlock()
			if was {
				c.emit(Event{Kind: EventNodeDisconnected, Node: p.String()})
			}
		},
	}
	c.h.Network().Notify(nb)
	for _, conn := range c.h.Network().Conns() {
		connected(c.h.Network(), conn)
	}
	go func() {
		<-c.ctx.Done()
		c.h.Network().StopNotify(nb)
		eventStates.Delete(c)
		st.mu.Lock()
		st.closed = true
		subs := st.subs
		st.subs = map[*eventSub]struct{}{}
		st.mu.Unlock()
		for s := range subs {
			s.stop()
		}
	}()
	return st
}

func addrString(a multiaddr.Multiaddr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// emit queues e for every event subscriber; without subscribers it does
// nothing.
func (c *Client) emit(e Event) {
	v, ok := eventStates.Load(c)
	if !ok {
		return
	}
	if e.Time.IsZero() {
		e.Time = c.cfg.Now()
	}
	st := v.(*eventState)
	st.mu.Lock()
	defer st.mu.Unlock()
	for s := range st.subs {
		s.push(e)
	}
}

// eventSub is one subscriber, with an unbounded queue (as listener is for
// messages) so that emitting never blocks libp2p's notifications or the
// message processing.
type eventSub struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
	out   chan Event
}

func (s *eventSub) push(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *eventSub) stop() { s.once.Do(func() { close(s.done) }) }

func (s *eventSub) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range q {
			select {
			case s.out <- e:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}
