package board

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Linux input event constants (linux/input-event-codes.h).
const (
	evKey = 0x01
	// KeyPower is what dtoverlay=gpio-key sends unless told otherwise.
	KeyPower uint16 = 116
)

// Key event values.
const (
	KeyReleased int32 = 0
	KeyPressed  int32 = 1
	KeyRepeated int32 = 2
)

// KeyEvent is one EV_KEY event from a Linux input device.
type KeyEvent struct {
	Time  time.Time // the kernel's timestamp of the event
	Code  uint16
	Value int32 // KeyReleased, KeyPressed or KeyRepeated
}

// InputReader decodes struct input_event records from a /dev/input device
// (or any stream of them). A Pi button wired to a GPIO becomes such a
// device with dtoverlay=gpio-key, so this covers GPIO buttons too.
type InputReader struct {
	r       io.Reader
	longLen int // bytes in a C long on the kernel side: 8 (arm64, amd64) or 4 (armv7)
	buf     []byte
}

// NewInputReader decodes events whose timeval fields are longLen bytes
// each: 8 on 64-bit kernels, 4 on 32-bit. Zero means this program's word
// size, which matches the kernel it runs on.
func NewInputReader(r io.Reader, longLen int) *InputReader {
	if longLen == 0 {
		longLen = strconv.IntSize / 8
	}
	return &InputReader{r: r, longLen: longLen, buf: make([]byte, 2*longLen+8)}
}

// EventSize is the size of one record.
func (d *InputReader) EventSize() int { return len(d.buf) }

// Next returns the next key event, skipping the synchronisation and other
// events a key device also sends. A stream that ends inside a record is
// io.ErrUnexpectedEOF; one that ends between records is io.EOF.
func (d *InputReader) Next() (KeyEvent, error) {
	for {
		if _, err := io.ReadFull(d.r, d.buf); err != nil {
			return KeyEvent{}, err
		}
		var sec, usec int64
		n := d.longLen
		if n == 8 {
			sec = int64(binary.NativeEndian.Uint64(d.buf[0:8]))
			usec = int64(binary.NativeEndian.Uint64(d.buf[8:16]))
		} else {
			sec = int64(int32(binary.NativeEndian.Uint32(d.buf[0:4])))
			usec = int64(int32(binary.NativeEndian.Uint32(d.buf[4:8])))
		}
		typ := binary.NativeEndian.Uint16(d.buf[2*n:])
		code := binary.NativeEndian.Uint16(d.buf[2*n+2:])
		val := int32(binary.NativeEndian.Uint32(d.buf[2*n+4:]))
		if typ != evKey {
			continue
		}
		if val < KeyReleased || val > KeyRepeated {
			return KeyEvent{}, fmt.Errorf("%w: key event value %d", ErrMalformed, val)
		}
		return KeyEvent{Time: time.Unix(sec, usec*1000), Code: code, Value: val}, nil
	}
}

// AppendInputEvent encodes an input_event record as NewInputReader(_,
// longLen) reads it; tests and simulators use it to play a button.
func AppendInputEvent(b []byte, longLen int, t time.Time, typ, code uint16, value int32) []byte {
	if longLen == 0 {
		longLen = strconv.IntSize / 8
	}
	if longLen == 8 {
		b = binary.NativeEndian.AppendUint64(b, uint64(t.Unix()))
		b = binary.NativeEndian.AppendUint64(b, uint64(t.Nanosecond()/1000))
	} else {
		b = binary.NativeEndian.AppendUint32(b, uint32(t.Unix()))
		b = binary.NativeEndian.AppendUint32(b, uint32(t.Nanosecond()/1000))
	}
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, code)
	return binary.NativeEndian.AppendUint32(b, uint32(value))
}

// EvKey is the EV_KEY event type, for AppendInputEvent.
const EvKey uint16 = evKey

// ButtonEvent is what a person did with the button.
type ButtonEvent int

const (
	// ShortPress: pressed and released before the hold time.
	ShortPress ButtonEvent = iota + 1
	// Held: kept down for the whole hold time (factory reset). Sent once
	// per press, while the button is still down.
	Held
)

func (e ButtonEvent) String() string {
	switch e {
	case ShortPress:
		return "short press"
	case Held:
		return "held"
	default:
		return "ButtonEvent(" + strconv.Itoa(int(e)) + ")"
	}
}

// DefaultHold is how long the button must be held for a factory reset.
const DefaultHold = 10 * time.Second

// Button turns key events into short presses and long holds.
type Button struct {
	Code uint16        // key to watch; 0 means any key
	Hold time.Duration // DefaultHold when zero
	// After starts the hold timer; time.After when nil. Tests pass a
	// channel they fire themselves, so no test waits ten seconds.
	After func(time.Duration) <-chan time.Time
}

// Run reads events from src until ctx ends or src fails, sending what the
// person did to out. It returns nil when ctx ends; closing src is the
// caller's job (a blocked read on a device ends only then).
func (b *Button) Run(ctx context.Context, src *InputReader, out chan<- ButtonEvent) error {
	hold, after := b.Hold, b.After
	if hold <= 0 {
		hold = DefaultHold
	}
	if after == nil {
		after = time.After
	}
	type result struct {
		ev  KeyEvent
		err error
	}
	events := make(chan result)
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			ev, err := src.Next()
			select {
			case events <- result{ev, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var timer <-chan time.Time // non-nil while pressed and not yet held
	down := false
	emit := func(e ButtonEvent) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
			timer = nil
			if !emit(Held) {
				return nil
			}
		case r := <-events:
			if r.err != nil {
				return fmt.Errorf("board.Button.Run: %w", r.err)
			}
			if b.Code != 0 && r.ev.Code != b.Code {
				continue
			}
			switch r.ev.Value {
			case KeyPressed:
				if !down {
					down, timer = true, after(hold)
				}
			case KeyReleased:
				short := down && timer != nil
				down, timer = false, nil
				if short && !emit(ShortPress) {
					return nil
				}
			}
		}
	}
}

// FindButton looks in /proc/bus/input/devices (below root) for a gpio-keys
// device and returns its event device path below root.
func FindButton(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc/bus/input/devices"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("board.FindButton: %w", ErrNotSupported)
	}
	if err != nil {
		return "", fmt.Errorf("board.FindButton: %w", err)
	}
	for _, block := range bytes.Split(b, []byte("\n\n")) {
		var name, phys, event string
		sc := bufio.NewScanner(bytes.NewReader(block))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "N: Name="):
				name = strings.Trim(strings.TrimPrefix(line, "N: Name="), `"`)
			case strings.HasPrefix(line, "P: Phys="):
				phys = strings.TrimPrefix(line, "P: Phys=")
			case strings.HasPrefix(line, "H: Handlers="):
				for _, h := range strings.Fields(strings.TrimPrefix(line, "H: Handlers=")) {
					if strings.HasPrefix(h, "event") {
						event = h
					}
				}
			}
		}
		if event != "" && (strings.HasPrefix(phys, "gpio-keys") || strings.Contains(name, "gpio")) {
			return filepath.Join(root, "dev/input", event), nil
		}
	}
	return "", fmt.Errorf("board.FindButton: no gpio-keys device: %w", ErrNotSupported)
}
