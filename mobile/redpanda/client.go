package redpanda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	gostrings "strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-p2p/homenode/client"
	"github.com/redpanda-p2p/homenode/internal/version"
)

// Default timeouts of the long calls, for a timeoutMs of 0 or less.
const (
	DefaultConnectTimeoutMs = 30_000
	DefaultSendTimeoutMs    = 30_000
	// DefaultPairTimeoutMs: a node under a flood of wrong pairing
	// attempts answers slowly; docs/PAIRING.md asks a phone to allow 5
	// minutes (show that it is waiting).
	DefaultPairTimeoutMs   = 300_000
	DefaultNodeTimeoutMs   = 30_000
	DefaultBackupTimeoutMs = 120_000
)

func msDuration(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// Version is the library's source revision ("dev" when built without
// the Makefile).
func Version() string { return version.Version }

// Options say where a client lives and how it behaves.
type Options struct {
	// Home is the client's directory, in the app's private storage
	// (Android: context.getFilesDir() + "/redpanda"; iOS: Application
	// Support). Everything the client keeps is there. Required.
	Home string
	// Create makes a new identity when Home holds none; without it, Open
	// of an empty home fails with CodeNotInitialised.
	Create bool
	// NoReceipts stops the client from posting delivery receipts.
	NoReceipts bool
	// LogLevel is the least level logged: "debug", "info", "warn" (the
	// default) or "error". Lines go to the Logger (SetLogger), else to
	// standard error.
	LogLevel string
	// ProbeIntervalMillis is how often a connected node is pinged to find
	// a connection its crash left behind: it bounds how long the app
	// stays deaf after the node comes back. 0: the SDK's default (3 s);
	// negative: no pings, which roughly halves a connected idle client's
	// wake-ups (docs/MOBILE.md, Measurements), and a dead connection
	// then lasts until QUIC's idle timeout (30 s).
	ProbeIntervalMillis int64
}

// NewOptions returns the options of a client in home that makes its
// identity on first use.
func NewOptions(home string) *Options { return &Options{Home: home, Create: true} }

var appLogger atomic.Pointer[loggerBox]

type loggerBox struct{ l Logger }

// SetLogger sends the log lines of every client opened from now on to l
// (nil: standard error).
func SetLogger(l Logger) {
	if l == nil {
		appLogger.Store(nil)
		return
	}
	appLogger.Store(&loggerBox{l: l})
}

// logWriter hands each line slog writes to the app's Logger with its
// level.
type logWriter struct{ l Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := gostrings.TrimRight(string(p), "\n")
	level := "info"
	if _, rest, ok := gostrings.Cut(line, "level="); ok {
		level, _, _ = gostrings.Cut(rest, " ")
		level = gostrings.ToLower(level)
	}
	w.l.Log(level, line)
	return len(p), nil
}

func newLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	switch gostrings.ToLower(level) {
	case "", "warn", "warning":
		lv = slog.LevelWarn
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "error":
		lv = slog.LevelError
	default:
		return nil, failCode(CodeBadInput, fmt.Sprintf("log level %q: want debug, info, warn or error", level))
	}
	var w io.Writer = os.Stderr
	if b := appLogger.Load(); b != nil {
		w = logWriter{l: b.l}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// Client is an open home. Its methods are safe to call from any thread.
//
// Lifecycle: Open opens the home (local calls work at once); Connect (or
// Resume) brings it online; Pause takes it off the network and closes
// the home when the app goes to the background; Resume opens it and
// reconnects; Close ends it. Calls made while paused still work: the
// home is opened for the call and closed after it.
type Client struct {
	opts   Options
	log    *slog.Logger
	id     string
	peerID string
	disp   *dispatcher

	lifeMu sync.Mutex     // serialises Pause, Resume and Close
	life   sync.RWMutex   // calls hold it for reading; Pause, Resume and Close for writing
	sdk    *client.Client // nil while paused or closed
	detach func()         // stops forwarding sdk's messages and events
	paused bool
	closed bool
	// epoch is the parent of every call's context: Pause and Close end
	// it (so calls in flight end at once), and it is renewed after.
	epoch     context.Context
	stopEpoch context.CancelFunc
	ended     atomic.Int32 // why the last epoch ended: CodePaused or CodeClosed

	tmpMu     sync.Mutex // the home opened for calls while paused
	tmp       *client.Client
	tmpDetach func()
	tmpUsers  int
}

// Open opens the client in opts.Home (creating its identity if
// opts.Create and there is none). It does not go online: call Connect.
func Open(opts *Options) (*Client, error) {
	if opts == nil || opts.Home == "" {
		return nil, failCode(CodeBadInput, "redpanda.Open: no home directory")
	}
	log, err := newLogger(opts.LogLevel)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: *opts, log: log}
	sdk, err := c.openSDK()
	if err != nil {
		return nil, err
	}
	return c.start(sdk), nil
}

// start makes a Client around an open SDK client.
func (c *Client) start(sdk *client.Client) *Client {
	c.id, c.peerID = sdk.ID(), sdk.PeerID()
	c.disp = newDispatcher()
	c.epoch, c.stopEpoch = context.WithCancel(context.Background())
	c.sdk = sdk
	c.detach = c.forward(sdk)
	return c
}

func (c *Client) sdkConfig() client.Config {
	return client.Config{Home: c.opts.Home, Create: c.opts.Create, DialOnly: true, NoReceipts: c.opts.NoReceipts,
		ProbeInterval: time.Duration(c.opts.ProbeIntervalMillis) * time.Millisecond, Owner: "redpanda app", Logger: c.log}
}

func (c *Client) openSDK() (*client.Client, error) {
	sdk, err := client.Open(c.sdkConfig())
	if err != nil {
		return nil, fail(err, CodeInternal)
	}
	return sdk, nil
}

// forward sends sdk's messages and events to the dispatcher until the
// returned function is called (or sdk closes); the function waits until
// forwarding has stopped.
func (c *Client) forward(sdk *client.Client) func() {
	var wg sync.WaitGroup
	var stops []func()
	if msgs, stop, err := sdk.Subscribe(""); err == nil {
		stops = append(stops, stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				c.disp.push(item{m: toMessage(m)})
			}
		}()
	}
	if evs, stop, err := sdk.Events(); err == nil {
		stops = append(stops, stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range evs {
				c.disp.push(item{e: &Event{Kind: e.Kind, Node: e.Node, MessageID: e.MessageID, Reader: e.Reader,
					Detail: e.Detail, TimeMs: ms(e.Time)}})
			}
		}()
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	}
}

// SetListener sets the receiver of messages and events (nil: none). Set
// it before Connect: what arrives while there is none is in the history
// but not called back.
func (c *Client) SetListener(l Listener) { c.disp.set(l) }

// ID returns this identity ("rpi…"): what friends issue tickets to.
func (c *Client) ID() string { return c.id }

// PeerID returns this device's libp2p peer ID.
func (c *Client) PeerID() string { return c.peerID }

// use runs fn with an open SDK client and the epoch: the running one or,
// while paused, one opened for the call (borrowed) and closed after the
// last such call ends.
func (c *Client) use(fn func(sdk *client.Client, epoch context.Context, borrowed bool) error) error {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return failCode(CodeClosed, "the client is closed")
	}
	if c.sdk != nil {
		return fn(c.sdk, c.epoch, false)
	}
	sdk, err := c.borrow()
	if err != nil {
		return err
	}
	defer c.giveBack()
	return fn(sdk, c.epoch, true)
}

func (c *Client) borrow() (*client.Client, error) {
	c.tmpMu.Lock()
	defer c.tmpMu.Unlock()
	if c.tmp == nil {
		sdk, err := c.openSDK()
		if err != nil {
			return nil, err
		}
		c.tmp, c.tmpDetach = sdk, c.forward(sdk)
	}
	c.tmpUsers++
	return c.tmp, nil
}

func (c *Client) giveBack() {
	c.tmpMu.Lock()
	defer c.tmpMu.Unlock()
	if c.tmpUsers--; c.tmpUsers > 0 {
		return
	}
	if err := c.tmp.Close(); err != nil {
		c.log.Warn("closing the home opened while paused", "err", err)
	}
	c.tmpDetach()
	c.tmp, c.tmpDetach = nil, nil
}

// local runs a call that does not wait on the network.
func (c *Client) local(fallback int, fn func(sdk *client.Client) error) error {
	return c.use(func(sdk *client.Client, _ context.Context, _ bool) error { return fail(fn(sdk), fallback) })
}

// Ways a long call uses the network.
const (
	dials    = false // it dials the node it needs itself
	syncsNow = true  // it needs sync sessions with the nodes (it posts or waits for messages)
)

// borrowedConnectShare is how much of a call's time a home opened while
// paused may spend connecting before the call itself runs.
const borrowedConnectShare = 2

// long runs a call that waits on the network, with its timeout and
// Cancel; the errors of its context end get their codes. A call that
// syncs, made while paused, connects the home opened for it first (for
// part of its time: a message that still finds no node stays pending).
func (c *Client) long(timeoutMs int64, def time.Duration, cancel *Cancel, fallback int, syncs bool, fn func(ctx context.Context, sdk *client.Client) error) error {
	return c.use(func(sdk *client.Client, epoch context.Context, borrowed bool) error {
		ctx, stop := callContext(epoch, timeoutMs, def, cancel)
		defer stop()
		if borrowed && syncs {
			deadline, _ := ctx.Deadline()
			cctx, cstop := context.WithTimeout(ctx, time.Until(deadline)/borrowedConnectShare)
			if err := sdk.Connect(cctx); err != nil {
				c.log.Info("a call while paused found no node", "err", err)
			}
			cstop()
		}
		err := fn(ctx, sdk)
		return ctxFail(err, ctx, cancel, func() int {
			if epoch.Err() != nil {
				return int(c.ended.Load())
			}
			return 0
		}, fallback)
	})
}

// endEpoch ends the calls in flight (why: CodePaused or CodeClosed).
// Called with lifeMu held.
func (c *Client) endEpoch(why int) {
	c.ended.Store(int32(why))
	c.stopEpoch()
}

// Connect brings the client online: it registers with its nodes, dials
// them and returns once a sync session with one is up; the client then
// stays connected (reconnecting by itself) until Pause or Close. While
// paused it is Resume. CodeNoNodes: no node is known yet (pair one);
// CodeUnreachable or CodeTimeout: none answered in time, and the client
// keeps trying in the background.
func (c *Client) Connect(timeoutMs int64, cancel *Cancel) error { return c.Resume(timeoutMs, cancel) }

// Pause takes the client off the network for the background: calls in
// flight end (CodePaused), connections close, every timer stops and the
// home is closed (no open file a suspended app could be killed for), so a
// paused client costs no wake-up. Registrations at the nodes stay:
// Resume catches up on what arrived meanwhile. Pausing a paused client
// does nothing.
func (c *Client) Pause() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return failCode(CodeClosed, "the client is closed")
	}
	if c.paused {
		return nil
	}
	c.endEpoch(CodePaused)
	c.life.Lock()
	defer c.life.Unlock()
	err := c.sdk.Close()
	c.detach()
	c.sdk, c.detach, c.paused = nil, nil, true
	c.epoch, c.stopEpoch = context.WithCancel(context.Background())
	c.disp.push(item{e: &Event{Kind: EventPaused, TimeMs: time.Now().UnixMilli()}})
	// A paused app should hold little memory: the OS kills the largest
	// background apps first.
	debug.FreeOSMemory()
	return fail(err, CodeInternal)
}

// Resume opens the home again (if paused) and brings the client online
// as Connect does; reconciliation with the nodes then delivers what
// arrived while it was paused, each message once. A Resume that fails to
// connect leaves the client resumed and trying (see Connect).
func (c *Client) Resume(timeoutMs int64, cancel *Cancel) error {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return failCode(CodeClosed, "the client is closed")
	}
	if c.paused {
		c.life.Lock()
		sdk, err := c.openSDK()
		if err != nil {
			c.life.Unlock()
			c.lifeMu.Unlock()
			return err
		}
		c.sdk, c.detach, c.paused = sdk, c.forward(sdk), false
		c.life.Unlock()
		c.disp.push(item{e: &Event{Kind: EventResumed, TimeMs: time.Now().UnixMilli()}})
	}
	c.lifeMu.Unlock()
	return c.long(timeoutMs, msDuration(DefaultConnectTimeoutMs), cancel, CodeUnreachable, dials, func(ctx context.Context, sdk *client.Client) error {
		err := sdk.Connect(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, client.ErrNoNodes) {
			return failCode(CodeUnreachable, err.Error())
		}
		return err
	})
}

// IsPaused reports whether the client is paused.
func (c *Client) IsPaused() bool {
	c.life.RLock()
	defer c.life.RUnlock()
	return c.paused
}

// IsOnline reports whether a sync session with a node is up.
func (c *Client) IsOnline() bool {
	c.life.RLock()
	defer c.life.RUnlock()
	return c.sdk != nil && len(c.sdk.Nodes().Connected()) > 0
}

// Close ends the client: calls in flight end (CodeClosed), the home is
// closed and no callback starts afterwards. Closing twice does nothing.
func (c *Client) Close() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return nil
	}
	c.endEpoch(CodeClosed)
	c.life.Lock()
	defer c.life.Unlock()
	var err error
	if c.sdk != nil {
		err = c.sdk.Close()
		c.detach()
	}
	c.sdk, c.detach, c.closed = nil, nil, true
	c.disp.stop()
	return fail(err, CodeInternal)
}

// item is one callback: a message or an event.
type item struct {
	m *Message
	e *Event
}

// dispatcher calls the Listener from one goroutine, in order, with an
// unbounded queue: the library never waits on the app's code, and the app
// may call the client from its callbacks.
type dispatcher struct {
	mu    sync.Mutex
	queue []item
	l     Listener
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) set(l Listener) {
	d.mu.Lock()
	d.l = l
	d.mu.Unlock()
}

func (d *dispatcher) push(it item) {
	d.mu.Lock()
	if d.l == nil {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, it)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) stop() { d.once.Do(func() { close(d.done) }) }

func (d *dispatcher) run() {
	for {
		select {
		case <-d.wake:
		case <-d.done:
			return
		}
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			it, l := d.queue[0], d.l
			d.queue[0] = item{}
			d.queue = d.queue[1:]
			d.mu.Unlock()
			select {
			case <-d.done:
				return
			default:
			}
			if l == nil {
				continue
			}
			if it.m != nil {
				l.OnMessage(it.m)
			} else {
				l.OnEvent(it.e)
			}
		}
	}
}
