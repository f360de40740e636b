package board

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// copyTree copies a fixture tree (with its symlinks) into a temp dir so a
// test can write to it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func codes(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

func TestDetectFixtures(t *testing.T) {
	tests := []struct {
		fixture                      string
		model, serial, rev, hardware string
		family                       Family
		led                          string // LED directory name, "" for none
		celsius                      float64
		throttle                     Throttle
		throttleErr                  error
		warnings                     []string
		button                       string
	}{
		{
			fixture: "pi3b", model: "Raspberry Pi 3 Model B Rev 1.2", serial: "00000000765fc593",
			rev: "a02082", hardware: "BCM2835", family: FamilyPi3, led: "led0", celsius: 81.604,
			throttle: UnderVoltage | Throttled | UnderVoltageBoot | ThrottledBoot,
			warnings: []string{"overheating", "under-voltage"},
		},
		{
			fixture: "pi4b", model: "Raspberry Pi 4 Model B Rev 1.1", serial: "10000000a43957f6",
			rev: "c03111", family: FamilyPi4, led: "ACT", celsius: 48.686,
			button: "dev/input/event0",
		},
		{
			fixture: "pi5b", model: "Raspberry Pi 5 Model B Rev 1.0", serial: "f1d12b5630430cca",
			rev: "c04170", family: FamilyPi5, led: "ACT", celsius: 62.35,
			throttle: SoftTempLimitBoot,
		},
		{
			fixture: "x86pc", model: "Dell Inc. OptiPlex 3050", serial: Unknown,
			family: FamilyUnknown, celsius: 27.8, throttleErr: ErrNotSupported,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			root := filepath.Join("testdata", tt.fixture)
			info, err := Detect(root)
			if err != nil {
				t.Fatal(err)
			}
			if info.Model != tt.model || info.Serial != tt.serial || info.Revision != tt.rev ||
				info.Hardware != tt.hardware || info.Family != tt.family {
				t.Errorf("got model %q serial %q rev %q hw %q family %v", info.Model, info.Serial,
					info.Revision, info.Hardware, info.Family)
			}
			if info.IsRaspberryPi() != (tt.family != FamilyUnknown) {
				t.Errorf("IsRaspberryPi = %v", info.IsRaspberryPi())
			}
			if got := filepath.Base(info.LEDPath); (info.LEDPath == "" && tt.led != "") || (info.LEDPath != "" && got != tt.led) {
				t.Errorf("LEDPath = %q, want %q", info.LEDPath, tt.led)
			}
			wantButton := ""
			if tt.button != "" {
				wantButton = filepath.Join(root, tt.button)
			}
			if info.ButtonDevice != wantButton {
				t.Errorf("ButtonDevice = %q, want %q", info.ButtonDevice, wantButton)
			}
			c, err := info.Temperature()
			if err != nil || c != tt.celsius {
				t.Errorf("Temperature = %v, %v; want %v", c, err, tt.celsius)
			}
			th, err := info.Throttling()
			if !errors.Is(err, tt.throttleErr) || th != tt.throttle {
				t.Errorf("Throttling = %v, %v; want %v, %v", th, err, tt.throttle, tt.throttleErr)
			}
			if got := codes(info.Read().Warnings()); !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings = %v, want %v", got, tt.warnings)
			}
		})
	}
}

// The live readers re-read the files on every call.
func TestLiveValuesReread(t *testing.T) {
	root := copyTree(t, "testdata/pi4b")
	info, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	if w := info.Read().Warnings(); len(w) != 0 {
		t.Fatalf("healthy fixture warns: %v", w)
	}
	write(t, info.ThermalPath, "85012\n")
	write(t, info.ThrottledPath, "10000\n") // under-voltage since boot only
	r := info.Read()
	if r.Celsius != 85.012 || r.Throttle != UnderVoltageBoot {
		t.Fatalf("re-read got %v %v", r.Celsius, r.Throttle)
	}
	if got := codes(r.Warnings()); !slices.Equal(got, []string{"overheating", "under-voltage-since-boot"}) {
		t.Fatalf("warnings = %v", got)
	}
	for _, w := range r.Warnings() {
		if !strings.HasSuffix(w.Message, ".") || len(w.Message) < 20 {
			t.Errorf("warning %q is not a plain sentence: %q", w.Code, w.Message)
		}
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDetectBadInput(t *testing.T) {
	if _, err := Detect(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	write(t, notDir, "x")
	if _, err := Detect(notDir); err == nil {
		t.Error("a file as root: no error")
	}

	tests := []struct {
		name        string
		files       map[string]string
		model       string
		serial      string
		tempErr     error
		throttleErr error
	}{
		{name: "empty tree", model: Unknown, serial: Unknown,
			tempErr: ErrNotSupported, throttleErr: ErrNotSupported},
		{name: "model without NUL, serial from cpuinfo",
			files: map[string]string{
				"proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4",
				"proc/cpuinfo":           "processor\t: 0\n\nRevision\t: c03114\nSerial\t\t: 100000001234abcd\n",
			},
			model: "Raspberry Pi 4 Model B Rev 1.4", serial: "100000001234abcd",
			tempErr: ErrNotSupported, throttleErr: ErrNotSupported},
		{name: "garbage everywhere",
			files: map[string]string{
				"proc/device-tree/model":                              "\x01\x02\xff\xfe\x00",
				"proc/device-tree/serial-number":                      "\x00\x00",
				"proc/cpuinfo":                                        "\x00\xff:\x01\n::::\nSerial: \x07\n",
				"sys/class/thermal/thermal_zone0/temp":                "hot\n",
				"sys/devices/platform/soc/soc:firmware/get_throttled": "throttled=0xZZ\n",
			},
			model: Unknown, serial: Unknown, tempErr: ErrMalformed, throttleErr: ErrMalformed},
		{name: "empty sensor files",
			files: map[string]string{
				"sys/class/thermal/thermal_zone0/temp":                "",
				"sys/devices/platform/soc/soc:firmware/get_throttled": "",
			},
			model: Unknown, serial: Unknown, tempErr: ErrMalformed, throttleErr: ErrMalformed},
		{name: "impossible temperature",
			files: map[string]string{"sys/class/thermal/thermal_zone0/temp": "-300000\n"},
			model: Unknown, serial: Unknown, tempErr: ErrMalformed, throttleErr: ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, s := range tt.files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(root, p), s)
			}
			info, err := Detect(root)
			if err != nil {
				t.Fatal(err)
			}
			if info.Model != tt.model || info.Serial != tt.serial || info.Family != FamilyUnknown && tt.model == Unknown {
				t.Errorf("model %q serial %q family %v", info.Model, info.Serial, info.Family)
			}
			if _, err := info.Temperature(); !errors.Is(err, tt.tempErr) {
				t.Errorf("Temperature err = %v, want %v", err, tt.tempErr)
			}
			if _, err := info.Throttling(); !errors.Is(err, tt.throttleErr) {
				t.Errorf("Throttling err = %v, want %v", err, tt.throttleErr)
			}
			if w := info.Read().Warnings(); len(w) != 0 {
				t.Errorf("unknown sensors produced warnings: %v", w)
			}
		})
	}
}

// A sensor that disappears after Detect (driver unloaded) is unsupported,
// not a zero reading.
func TestSensorVanishes(t *testing.T) {
	root := copyTree(t, "testdata/pi5b")
	info, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(info.ThermalPath); err != nil {
		t.Fatal(err)
	}
	if c, err := info.Temperature(); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Temperature = %v, %v", c, err)
	}
}

func TestParseThrottled(t *testing.T) {
	tests := []struct {
		in   string
		want Throttle
		err  bool
	}{
		{"0\n", 0, false},
		{"50005\n", UnderVoltage | Throttled | UnderVoltageBoot | ThrottledBoot, false},
		{"throttled=0x50000\n", UnderVoltageBoot | ThrottledBoot, false},
		{"throttled=0x0", 0, false},
		{"0x80008", SoftTempLimit | SoftTempLimitBoot, false},
		{"e000f", 0xe000f, false},
		{"", 0, true},
		{"throttled=", 0, true},
		{"0x", 0, true},
		{"-1", 0, true},
		{"1ffffffff", 0, true},
		{"throttled=0x5 junk", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseThrottled(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseThrottled(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseThrottled(%q) error %v is not ErrMalformed", tt.in, err)
		}
	}
}

func TestThrottleString(t *testing.T) {
	tests := []struct {
		t    Throttle
		want string
	}{
		{0, "0x0 (ok)"},
		{UnderVoltage | UnderVoltageBoot, "0x10001 (under-voltage, under-voltage since boot)"},
		{1 << 30, "0x40000000 (undocumented bits 0x40000000)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint32(tt.t), got, tt.want)
		}
	}
}

// Detect on the machine running the tests must not fail, Pi or not.
func TestDetectLive(t *testing.T) {
	info, err := Detect("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this machine: %s (%v)", info, info.Family)
}

func FuzzParseThrottled(f *testing.F) {
	for _, s := range []string{"0\n", "50005\n", "throttled=0x50005", "0x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThrottled(s)
		if err != nil && (th != 0 || !errors.Is(err, ErrMalformed)) {
			t.Fatalf("error with value %v: %v", th, err)
		}
	})
}

func FuzzParseMillidegrees(f *testing.F) {
	for _, s := range []string{"48686\n", "-5000", "hot", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseMillidegrees(s)
		if err == nil && (c < -273.15 || c > 200) {
			t.Fatalf("accepted %q as %v", s, c)
		}
	})
}
