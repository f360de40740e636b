package board

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unknown is shown for any identity field that could not be determined.
const Unknown = "unknown"

// Family is the broad kind of machine; code that needs a Pi-specific
// behaviour branches on it rather than on the model string.
type Family int

// Families this package recognises. Other Pis are FamilyOtherPi.
const (
	FamilyUnknown Family = iota
	FamilyPi3
	FamilyPi4
	FamilyPi5
	FamilyOtherPi
)

func (f Family) String() string {
	switch f {
	case FamilyPi3:
		return "Raspberry Pi 3"
	case FamilyPi4:
		return "Raspberry Pi 4"
	case FamilyPi5:
		return "Raspberry Pi 5"
	case FamilyOtherPi:
		return "Raspberry Pi"
	default:
		return Unknown
	}
}

// Info describes the detected machine and knows where its live sensors and
// devices are. Identity fields are fixed at Detect; Temperature and
// Throttling re-read the hardware on every call.
type Info struct {
	Root     string // the directory everything was read below
	Model    string // e.g. "Raspberry Pi 4 Model B Rev 1.1"; Unknown if none
	Family   Family
	Serial   string // board serial; Unknown if none
	Revision string // Pi revision code from /proc/cpuinfo ("c03111"); "" if none
	Hardware string // cpuinfo "Hardware" (32-bit Pi kernels only); "" if none

	// Absolute paths below Root; "" when the machine has no such thing.
	ThermalPath   string
	ThrottledPath string
	LEDPath       string // the LED's sysfs directory
	ButtonDevice  string // /dev/input/eventN of a gpio-keys button, below Root
}

// IsRaspberryPi reports whether the machine is any Raspberry Pi.
func (i *Info) IsRaspberryPi() bool { return i.Family != FamilyUnknown }

// String is a one-line description for logs and the status page.
func (i *Info) String() string {
	if i.Serial == Unknown {
		return i.Model
	}
	return i.Model + " (serial " + i.Serial + ")"
}

// Paths below the root, relative; the device-tree ones are tried in order
// because /proc/device-tree is only a symlink to the sysfs copy.
var (
	modelPaths  = []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model"}
	serialPaths = []string{"proc/device-tree/serial-number", "sys/firmware/devicetree/base/serial-number"}
	// The Pi firmware driver's node is "soc:firmware" on BCM2835..2711 and
	// "soc@107c000000:firmware" on BCM2712 (Pi 5), so the fixed path is
	// tried first and then the glob.
	throttledPaths = []string{
		"sys/devices/platform/soc/soc:firmware/get_throttled",
		"sys/devices/platform/soc*/soc*:firmware/get_throttled",
	}
	ledNames = []string{"ACT", "led0"}
)

// Detect identifies the machine from the files below root ("" or "/" for
// the running system). Missing files leave fields Unknown; only an
// unreadable root or an I/O error other than absence is an error.
func Detect(root string) (*Info, error) {
	if root == "" {
		root = "/"
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("board.Detect: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("board.Detect: root %s is not a directory", root)
	}
	info := &Info{Root: root, Model: Unknown, Serial: Unknown}

	cpu, err := readCPUInfo(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return nil, fmt.Errorf("board.Detect: %w", err)
	}
	info.Revision = cpu["Revision"]
	info.Hardware = cpu["Hardware"]

	model, err := readFirstString(root, modelPaths)
	if err != nil {
		return nil, fmt.Errorf("board.Detect: %w", err)
	}
	switch {
	case model != "":
		info.Model = model
	case cpu["Model"] != "":
		info.Model = cpu["Model"]
	default:
		if dmi := dmiModel(root); dmi != "" {
			info.Model = dmi
		}
	}
	info.Family = familyOf(info.Model)

	serial, err := readFirstString(root, serialPaths)
	if err != nil {
		return nil, fmt.Errorf("board.Detect: %w", err)
	}
	switch {
	case serial != "":
		info.Serial = serial
	case cpu["Serial"] != "":
		info.Serial = cpu["Serial"]
	}

	if p := filepath.Join(root, "sys/class/thermal/thermal_zone0/temp"); exists(p) {
		info.ThermalPath = p
	}
	info.ThrottledPath = findThrottled(root)
	for _, name := range ledNames {
		if p := filepath.Join(root, "sys/class/leds", name); exists(filepath.Join(p, "brightness")) {
			info.LEDPath = p
			break
		}
	}
	if dev, err := FindButton(root); err == nil {
		info.ButtonDevice = dev
	}
	return info, nil
}

func familyOf(model string) Family {
	switch {
	case !strings.HasPrefix(model, "Raspberry Pi"):
		return FamilyUnknown
	case strings.HasPrefix(model, "Raspberry Pi 3 "):
		return FamilyPi3
	case strings.HasPrefix(model, "Raspberry Pi 4 "):
		return FamilyPi4
	case strings.HasPrefix(model, "Raspberry Pi 5 "):
		return FamilyPi5
	default:
		return FamilyOtherPi
	}
}

func findThrottled(root string) string {
	for _, rel := range throttledPaths {
		matches, _ := filepath.Glob(filepath.Join(root, rel)) // the patterns are constant and valid
		for _, m := range matches {
			if exists(m) {
				return m
			}
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readFirstString returns the first of paths (below root) that exists, as a
// device-tree string: NUL-terminated, printable. A file that exists but
// holds garbage reads as "" (unknown), since a malformed model must not stop
// the box from starting.
func readFirstString(root string, paths []string) (string, error) {
	for _, rel := range paths {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		s, ok := deviceTreeString(b)
		if !ok {
			return "", nil
		}
		return s, nil
	}
	return "", nil
}

// deviceTreeString decodes a device-tree string property: text up to the
// first NUL (a string-list property holds several; the first one counts).
// It rejects empty, non-UTF-8 and control-character content.
func deviceTreeString(b []byte) (string, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := strings.TrimSpace(string(b))
	if s == "" || !utf8.ValidString(s) || len(s) > 256 {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", false
		}
	}
	return s, true
}

// readCPUInfo parses the machine-wide "Key : value" lines of /proc/cpuinfo
// (Hardware, Revision, Serial, Model). Per-processor blocks repeat keys; the
// last value wins, which is the machine-wide one on a Pi. A missing file is
// an empty map.
func readCPUInfo(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseCPUInfo(b), nil
}

func parseCPUInfo(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "Hardware", "Revision", "Serial", "Model":
			if s, ok := deviceTreeString([]byte(val)); ok {
				out[key] = s
			}
		}
	}
	return out
}

// dmiModel names a PC from its firmware tables ("Dell Inc. OptiPlex 3050").
func dmiModel(root string) string {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "sys/class/dmi/id", name))
		if err != nil {
			return ""
		}
		s, _ := deviceTreeString(b)
		return s
	}
	return strings.TrimSpace(read("sys_vendor") + " " + read("product_name"))
}
