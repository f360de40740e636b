package board

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// OverheatCelsius is the CPU temperature at and above which the board is
// reported as overheating. The Pi firmware starts soft throttling at 80 °C
// (85 °C hard), so this warns before performance drops.
const OverheatCelsius = 80.0

// Temperature re-reads the CPU temperature in °C. It returns ErrNotSupported
// when the machine has no thermal zone and ErrMalformed for garbage.
func (i *Info) Temperature() (float64, error) {
	if i.ThermalPath == "" {
		return 0, fmt.Errorf("board.Temperature: %w", ErrNotSupported)
	}
	b, err := readSysfs(i.ThermalPath)
	if err != nil {
		return 0, fmt.Errorf("board.Temperature: %w", err)
	}
	c, err := ParseMillidegrees(b)
	if err != nil {
		return 0, fmt.Errorf("board.Temperature: %s: %w", i.ThermalPath, err)
	}
	return c, nil
}

// ParseMillidegrees decodes a thermal zone's "temp" file: an integer in
// thousandths of a degree Celsius, newline-terminated.
func ParseMillidegrees(s string) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: temperature %q", ErrMalformed, truncate(s))
	}
	// Below absolute zero or above any silicon's survival is a driver bug
	// or a wrong file, not a reading.
	if v < -273150 || v > 200000 {
		return 0, fmt.Errorf("%w: temperature %d m°C out of range", ErrMalformed, v)
	}
	return float64(v) / 1000, nil
}

// Throttle is the Raspberry Pi firmware's get_throttled bit field.
type Throttle uint32

// Bits of Throttle: 0-3 are the current state, 16-19 whether each has
// happened since boot.
const (
	UnderVoltage      Throttle = 1 << 0
	FrequencyCapped   Throttle = 1 << 1
	Throttled         Throttle = 1 << 2
	SoftTempLimit     Throttle = 1 << 3
	UnderVoltageBoot  Throttle = 1 << 16
	FrequencyCapBoot  Throttle = 1 << 17
	ThrottledBoot     Throttle = 1 << 18
	SoftTempLimitBoot Throttle = 1 << 19

	knownThrottleBits = UnderVoltage | FrequencyCapped | Throttled | SoftTempLimit |
		UnderVoltageBoot | FrequencyCapBoot | ThrottledBoot | SoftTempLimitBoot
)

var throttleNames = []struct {
	bit  Throttle
	name string
}{
	{UnderVoltage, "under-voltage"},
	{FrequencyCapped, "frequency capped"},
	{Throttled, "throttled"},
	{SoftTempLimit, "soft temperature limit"},
	{UnderVoltageBoot, "under-voltage since boot"},
	{FrequencyCapBoot, "frequency capped since boot"},
	{ThrottledBoot, "throttled since boot"},
	{SoftTempLimitBoot, "soft temperature limit since boot"},
}

// Has reports whether all bits of f are set.
func (t Throttle) Has(f Throttle) bool { return t&f == f }

// String lists the set flags ("ok" when none), in the vcgencmd hex form.
func (t Throttle) String() string {
	var parts []string
	for _, n := range throttleNames {
		if t.Has(n.bit) {
			parts = append(parts, n.name)
		}
	}
	if other := t &^ knownThrottleBits; other != 0 {
		parts = append(parts, fmt.Sprintf("undocumented bits %#x", uint32(other)))
	}
	if len(parts) == 0 {
		return "0x0 (ok)"
	}
	return fmt.Sprintf("%#x (%s)", uint32(t), strings.Join(parts, ", "))
}

// ParseThrottled decodes either form of the flags: the sysfs file
// ("50005\n", hex without a prefix) or vcgencmd's "throttled=0x50005".
func ParseThrottled(s string) (Throttle, error) {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutPrefix(s, "throttled="); ok {
		s = v
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || s == "" {
		return 0, fmt.Errorf("%w: throttled flags %q", ErrMalformed, truncate(s))
	}
	return Throttle(v), nil
}

// Throttling re-reads the firmware's throttling flags. It returns
// ErrNotSupported on machines without the Pi firmware driver.
func (i *Info) Throttling() (Throttle, error) {
	if i.ThrottledPath == "" {
		return 0, fmt.Errorf("board.Throttling: %w", ErrNotSupported)
	}
	b, err := readSysfs(i.ThrottledPath)
	if err != nil {
		return 0, fmt.Errorf("board.Throttling: %w", err)
	}
	t, err := ParseThrottled(b)
	if err != nil {
		return 0, fmt.Errorf("board.Throttling: %s: %w", i.ThrottledPath, err)
	}
	return t, nil
}

// readSysfs reads a small attribute file; a file that vanished (a sensor
// driver unloaded) is ErrNotSupported.
func readSysfs(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, ErrNotSupported)
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Warning is a hardware condition the owner should act on, with a plain
// sentence for the status page and the journal.
type Warning struct {
	Code    string // stable identifier: "overheating", "under-voltage", "under-voltage-since-boot"
	Message string
}

// Reading is one sample of the live sensors. A sensor the machine lacks is
// left unknown (its error is ErrNotSupported).
type Reading struct {
	Celsius     float64
	TempErr     error
	Throttle    Throttle
	ThrottleErr error
}

// Read samples every live sensor once.
func (i *Info) Read() Reading {
	var r Reading
	r.Celsius, r.TempErr = i.Temperature()
	r.Throttle, r.ThrottleErr = i.Throttling()
	return r
}

// Warnings returns what in r needs attention: overheating at or above
// OverheatCelsius, under-voltage now, or under-voltage since boot.
func (r Reading) Warnings() []Warning {
	var w []Warning
	if r.TempErr == nil && r.Celsius >= OverheatCelsius {
		w = append(w, Warning{"overheating", fmt.Sprintf(
			"The processor is at %.1f °C, which is too hot: give the box more air or a fan.", r.Celsius)})
	}
	if r.ThrottleErr == nil {
		switch {
		case r.Throttle.Has(UnderVoltage):
			w = append(w, Warning{"under-voltage", "The power supply is too weak right now: " +
				"use the official power supply and a short, thick cable, or the SD card may be damaged."})
		case r.Throttle.Has(UnderVoltageBoot):
			w = append(w, Warning{"under-voltage-since-boot", "The power supply was too weak at some " +
				"point since the box started: use the official power supply and a short, thick cable."})
		}
	}
	return w
}
