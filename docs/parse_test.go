package docs

import (
	"strings"
	"testing"
)

// TestParse: which lines of a doc are commands, with their prompts, and
// which are output, formats or other languages; and the annotations.
func TestParse(t *testing.T) {
	src := strings.Join([]string{
		"# A doc",
		"",
		"<!-- doctest: KEY is the output of \"channel new\" -->",
		"```sh",
		"redpanda channel new family   # prints KEY",
		"redpanda send family \\",
		"  'hello'",
		"# a comment line",
		"```",
		"",
		"```toml",
		"http = \"lan:8080\"",
		"```",
		"",
		"```",
		"block := \"RPB1\" | channel(32)",
		"make help",
		"```",
		"",
		"    bob$   redpanda contacts add carol +49 151 23456789",
		"    asked:    bob, dave",
		"    go test -bench X ./client",
		"    BenchmarkX-2   10   132 ns/op",
		"",
		"    CID(v1, raw, SHA-256(...))",
		"",
		"<!-- doctest:",
		"  the output of \"listen\" shows /hello/",
		"  THEIR-ID is /id: (\\S+)/ in the output of \"bob id\"",
		"-->",
	}, "\n")
	steps, err := parse("x.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		switch {
		case s.cmd != "" && s.actor != "":
			got = append(got, s.actor+"$ "+s.cmd)
		case s.cmd != "":
			got = append(got, s.cmd)
		default:
			got = append(got, "note: "+s.note)
		}
	}
	want := []string{
		`note: KEY is the output of "channel new"`,
		"redpanda channel new family   # prints KEY",
		"redpanda send family  'hello'",
		"make help",
		"bob$ redpanda contacts add carol +49 151 23456789",
		"go test -bench X ./client",
		`note: the output of "listen" shows /hello/`,
		`note: THEIR-ID is /id: (\S+)/ in the output of "bob id"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := parse("y.md", []byte("```sh\nredpanda init\n")); err == nil {
		t.Error("an unclosed fence was not reported")
	}
}

func TestRulesAndComments(t *testing.T) {
	for _, tc := range []struct {
		file, cmd string
		known     bool
		do        action
	}{
		{"README.md", "go run ./cmd/redpanda --home /tmp/a init", true, run},
		{"README.md", "go run ./cmd/redpanda --home /tmp/a listen", true, background},
		{"README.md", "make run     # a node", true, makeRun},
		{"README.md", "make image BOARD=rpi-arm64", true, skipMake},
		{"README.md", "rm -rf /", false, 0},
		{"README.md", "frobnicate --all", false, 0},
		{"CONTACTS.md", "redpanda contacts find 0151", true, skip},
		{"README.md", "redpanda contacts find 0151", true, run},
	} {
		r, ok := ruleFor(tc.file, tc.cmd)
		if ok != tc.known || (ok && r.do != tc.do) {
			t.Errorf("%s %q: known %v action %d, want %v %d", tc.file, tc.cmd, ok, r.do, tc.known, tc.do)
		}
	}
	for in, want := range map[string]string{
		"redpanda id    # THEIR-ID":         "redpanda id",
		"redpanda send fam 'a # b'  # note": "redpanda send fam 'a # b'",
		`echo "x#y" | redpanda`:             `echo "x#y" | redpanda`,
		"curl http://x/#frag":               "curl http://x/#frag",
	} {
		if got := stripComment(in); got != want {
			t.Errorf("stripComment(%q) = %q, want %q", in, got, want)
		}
	}
}
