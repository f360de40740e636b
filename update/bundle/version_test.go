package bundle

import (
	"os/exec"
	"testing"
)

var versionPairs = [][2]string{
	{"1.0", "1.0"}, {"1.0", "1.1"}, {"1.2.0-1", "1.10.0-1"}, {"1.0~rc1-1", "1.0-1"},
	{"1.0-1", "1.0-2"}, {"1.0-1", "1.0+b1-1"}, {"1:0.1", "2.0"}, {"0~git20261206201500.ab12cd34-1", "0.1-1"},
	{"0~git20261206201500.ab12cd34-1", "0~git20261207000000.00000000-1"}, {"1.0a", "1.0b"}, {"1.0a", "1.0"},
	{"1.0~", "1.0"}, {"1.0~~", "1.0~"}, {"1.0.0", "1.0"}, {"01.0", "1.0"}, {"1.0-1.1", "1.0-1"},
	{"2.4.7-1", "2.4.7-1~bpo12+1"}, {"1.0+", "1.0."}, {"10", "9"}, {"1.0-a", "1.0-A"},
}

// TestCompareVersionsDpkg checks the order against dpkg itself.
func TestCompareVersionsDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed")
	}
	for _, p := range versionPairs {
		for _, ab := range [][2]string{p, {p[1], p[0]}} {
			a, b := ab[0], ab[1]
			got := CompareVersions(a, b)
			for _, op := range []struct {
				name  string
				holds bool
			}{{"lt", got < 0}, {"eq", got == 0}, {"gt", got > 0}} {
				err := exec.Command(dpkg, "--compare-versions", a, op.name, b).Run()
				if (err == nil) != op.holds {
					t.Errorf("CompareVersions(%q, %q) = %d, but dpkg --compare-versions %s says %v", a, b, got, op.name, err == nil)
				}
			}
		}
	}
}

func TestCompareVersionsKnown(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.2.0-1", "1.10.0-1", -1}, {"1.0~rc1-1", "1.0-1", -1}, {"1:0.1", "2.0", 1}, {"1.0", "1.0", 0},
		{"0~git20261206201500.ab12cd34-1", "0.1-1", -1}, {"bad version", "1.0", -1}, {"1.0", "", 1},
	} {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1.0", "1:2.3-4", "0~git20261206201500.ab12cd34-1", "1.0+b1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "a1.0", "1.0-", "x:1.0", "1.0 beta", "1.0_2", "1.0-a:b"} {
		if err := CheckVersion(v); err == nil {
			t.Errorf("CheckVersion(%q) accepted it", v)
		}
	}
}
