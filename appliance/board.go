package appliance

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/redpanda-p2p/homenode/board"
	"github.com/redpanda-p2p/homenode/provisioning"
)

// ledLoop shows the node's state on the board's activity LED: a distinct
// double blink while waiting for pairing, a short blip every few seconds
// once owned. The LED goes back to its kernel trigger on the way out. A
// board without an LED, or a sandbox that forbids writing it, only costs
// a log line.
func (a *Appliance) ledLoop(ctx context.Context, states <-chan provisioning.State) {
	if a.board == nil || a.board.LEDPath == "" {
		return
	}
	led, err := board.OpenLED(a.board.LEDPath)
	if err != nil {
		a.log.Info("activity LED not available", "err", err)
		return
	}
	defer led.Release()
	var stop context.CancelFunc = func() {}
	done := make(chan struct{})
	close(done)
	show := func(p board.Pattern) {
		stop()
		<-done
		var bctx context.Context
		bctx, stop = context.WithCancel(ctx)
		done = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			if err := led.Blink(bctx, p); err != nil && bctx.Err() == nil {
				a.log.Info("activity LED", "err", err)
			}
		}(done)
	}
	defer func() { stop(); <-done }()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-states:
			if s == provisioning.StateOwned {
				show(board.Running)
			} else {
				show(board.WaitingForPairing)
			}
		}
	}
}

// buttonSearch is how long after start the button is looked for.
const buttonSearch = 3 * time.Minute

// buttonLoop turns the board's button held for ten seconds (Options.
// ButtonHold in tests) into a factory reset.
func (a *Appliance) buttonLoop(ctx context.Context) {
	if a.board == nil {
		return
	}
	dev := a.board.ButtonDevice
	// udev loads the button's drivers (gpio-keys, evdev) while the boot
	// goes on, perhaps after the node started: look again for a while.
	search := a.opts.ButtonSearch
	if search <= 0 {
		search = buttonSearch
	}
	var lastErr error
	for deadline := time.Now().Add(search); dev == "" && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(5*time.Second, time.Until(deadline))):
		}
		dev, lastErr = board.FindButton(a.cfg.BoardRoot)
	}
	if dev == "" {
		// Said once: a board whose button never shows (no gpio-keys node
		// in its device tree, a driver missing) has no factory reset.
		a.log.Info("no reset button found", "searched", filepath.Join(a.cfg.BoardRoot, "/proc/bus/input/devices"),
			"for", "a gpio-keys input device", "during", search, "err", lastErr)
		return
	}
	f, err := os.Open(dev)
	if err != nil {
		a.log.Info("reset button not available", "device", dev, "err", err)
		return
	}
	go func() { <-ctx.Done(); f.Close() }() // a blocked read ends only when the file closes
	events := make(chan board.ButtonEvent, 4)
	go func() {
		btn := board.Button{Hold: a.opts.ButtonHold}
		if err := btn.Run(ctx, board.NewInputReader(f, 0), events); err != nil && ctx.Err() == nil {
			a.log.Warn("reset button stopped", "err", err)
		}
		close(events)
	}()
	a.log.Info("reset button ready", "device", dev)
	for ev := range events {
		if ev != board.Held {
			a.log.Info("reset button pressed briefly: hold it 10 seconds for a factory reset")
			continue
		}
		a.log.Warn("reset button held: factory reset")
		if err := a.Reset(ctx); err != nil {
			a.log.Error("factory reset from the button failed", "err", err)
		}
	}
}
