package fieldkit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	ms := func(v ...int) Durations {
		var d Durations
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, c := range []struct {
		d             Durations
		median, worst time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond, 9 * time.Millisecond},
		{ms(4, 1, 3, 100), 3500 * time.Microsecond, 100 * time.Millisecond},
	} {
		if m, w := c.d.Median(), c.d.Worst(); m != c.median || w != c.worst {
			t.Errorf("%v: median %v worst %v, want %v and %v", c.d, m, w, c.median, c.worst)
		}
	}
	if s := ms(9, 1, 5).String(); s != "median 5ms, worst 9ms of 3" {
		t.Errorf("String: %q", s)
	}
}

// TestKnowsTheBinariesOnlyFromOutside keeps the package doc's rule: what
// passes through this kit is what a person gets, so it imports none of
// the product's packages.
func TestKnowsTheBinariesOnlyFromOutside(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/redpanda-p2p/homenode/") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
