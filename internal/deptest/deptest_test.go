package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/redpanda-p2p/homenode"

// Prefixes of import paths, for the rules below.
const (
	libp2pRoot = "github.com/libp2p/go-libp2p" // the package that constructs hosts (libp2p.New), matched exactly
	kadDHT     = "github.com/libp2p/go-libp2p-kad-dht"
	lpHost     = "github.com/libp2p/go-libp2p/core/host"
	lpNetwork  = "github.com/libp2p/go-libp2p/core/network"
	lpPeer     = "github.com/libp2p/go-libp2p/core/peer"
	promClient = "github.com/prometheus/client_golang"
)

// rule is one package's "must not know", as import paths (a path forbids
// itself and every package below it; "=path" forbids that package only)
// and the doc's words for why.
type rule struct {
	bad []string
	why string
}

func m(paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		if strings.HasPrefix(p, "=") {
			out[i] = "=" + mod + "/" + p[1:]
		} else {
			out[i] = mod + "/" + p
		}
	}
	return out
}

// nodeBelow is the rule for every package under node/ (common.md, and the
// node package's doc): node/* never imports the appliance, provisioning or
// board, nor the programs, the SDK (client, mobile) and tools above it.
var nodeBelow = m("appliance", "provisioning", "board", "cmd", "client", "mobile", "internal/attack", "internal/testkit")

// rules map a package (relative to the module) to what its doc says it
// must not know. Every package whose doc has such a line has an entry
// (TestEveryMustNotHasARule).
var rules = map[string]rule{
	"appliance/admin":    {m("=appliance", "=node", "node/routing", "node/store", "board"), "must not know how status is gathered or how a revocation or a block is carried out"},
	"appliance/health":   {append(m("node", "appliance/metrics", "status", "owner", "appliance/web"), "net/http", promClient), "must not know about the redPanda protocol, metrics formats or HTTP"},
	"appliance/metrics":  {m("node", "board", "provisioning", "=appliance"), "must not know where the figures come from: the appliance supplies a status.Source"},
	"appliance/portmap":  {m("node/peersync", "node/routing", "node/wire", "node/store", "node/channel", "board"), "must not know about redPanda protocols, the store or the board"},
	"appliance/sdnotify": {[]string{mod}, "must not know what the daemon does"},
	"status": {append(m("node", "board", "provisioning", "appliance", "owner", "client"), "net/http"),
		"must not know where the figures come from (node, board, procfs, provisioning) nor how they are served (HTTP, admin socket, sd_notify)"},
	"appliance/web":             {m("node", "board", "provisioning", "=appliance"), "must not know how the figures are made"},
	"board":                     {m("node", "appliance", "provisioning"), "must not know about the redPanda protocol, the node, systemd or the status page"},
	"internal/attack":           {m("=appliance", "=node", "cmd"), "must not reach into the node's process or packages' internals"},
	"internal/loopback":         {[]string{mod}, "must not know any package of this module"},
	"internal/peerlimit":        {m("node", "appliance", "provisioning"), "knows libp2p connections and multiaddrs, nothing of the protocols that use it"},
	"internal/sockowner":        {[]string{mod}, "must not know what the ports are for"},
	"internal/testkit":          {[]string{mod}, "must not know any package of this module"},
	"internal/testkit/testhost": {[]string{mod}, "must not know any package of this module"},
	"internal/version":          {[]string{mod}, "knows nothing else"},
	"node":                      {nodeBelow, "knows nothing of boards, systemd, routers or pairing: the appliance package adds those"},
	"mobile/redpanda": {m("appliance", "board", "cmd", "internal/attack", "internal/testkit"),
		"uses only the SDK's and the owner-side protocols' exported API and must not know how they work inside, nor the appliance"},
	"cmd/redpanda": {m("appliance", "board"), "must not know about the appliance (boards, systemd, provisioning internals)"},
	"owner": {m("appliance", "board", "=node", "node/peersync", "node/routing", "node/p2p", "client", "provisioning", "update", "cmd"),
		"must not know the appliance"},
	"node/report": {append(m("=appliance", "appliance/admin", "owner", "client", "update"), nodeBelow...), "must not know the appliance, the SDK or the update machinery"},
	"update": {append(m("appliance", "owner", "node", "provisioning", "board"), "github.com/libp2p", "github.com/coreos/go-systemd", "go.etcd.io/bbolt"),
		"must not know libp2p, the owner protocol, the message store's format, systemd or the appliance"},
	"update/bootenv": {m("=update", "update/bundle", "appliance", "node"), "must not know what the variables mean (slots, boot counts), bundles, or the appliance"},
	"update/bundle":  {append(m("=update", "update/bootenv", "appliance", "node"), "net/http"), "must not know disks, slots, boot loaders, the appliance or the network"},
	"node/channel": {append(m("node/store", "node/p2p", "node/peersync", "node/wire", "node/discovery", "node/routing", "client", "=node"), lpHost, lpNetwork, "net"),
		"must not know about storage, networking, or anything above the protocol"},
	"client":           {append(m("=node"), nodeBelow...), "must not know about the appliance (boards, systemd, provisioning)"},
	"node/control":     {[]string{mod, "github.com/libp2p"}, "must not know libp2p, the store, the node, the client or anything else of this module"},
	"node/discovery":   {append(m("node/peersync", "node/routing", "client", "=node"), append([]string{"=" + libp2pRoot}, nodeBelow...)...), "must not construct hosts, run the sync protocol itself, or know about registrations, clients, the appliance or boards"},
	"node/hint":        {append(m("node/channel", "client", "node/store", "node/discovery"), append([]string{kadDHT}, nodeBelow...)...), "must not know channels, clients, stores or the DHT"},
	"node/p2p":         {append(m("node/peersync", "node/routing", "node/wire", "node/discovery", "client", "=node"), nodeBelow...), "must not know about the redPanda protocols, about who is registered, about UPnP or about boards and systemd"},
	"node/p2p/nattest": {nodeBelow, "must not know about the appliance"},
	"node/routing":     {append(m("=node", "node/peersync", "node/store", "node/discovery", "client"), append([]string{kadDHT}, nodeBelow...)...), "must not know how registrations turn into synced channels, nor how records are stored, nor about pairing, boards or the DHT"},
	"node/store":       {append(m("node/p2p", "node/peersync", "node/discovery", "node/routing", "client", "=node"), append([]string{lpHost, lpNetwork}, nodeBelow...)...), "must not know about networking, peers beyond their names, or the appliance"},
	"node/peersync":    {append(m("node/routing", "node/discovery", "client", "node/p2p", "=node"), append([]string{"=" + libp2pRoot, kadDHT}, nodeBelow...)...), "must not construct hosts, open stores, or know about registrations, the DHT or the appliance"},
	"node/wire":        {append(m("node/store", "node/peersync", "node/p2p", "=node"), append([]string{lpPeer, lpHost}, nodeBelow...)...), "must not know about storage, peers or the sync protocol's state"},
	"packaging":        {[]string{mod}, "has no Go API and must not know the daemon's internals"},
	"sim":              {m("appliance", "provisioning", "board", "cmd", "client", "internal/attack", "internal/testkit"), "drives nodes only through what the node offers its layers above; must not reach into their internals (nor the appliance or the client around them)"},
	"systemd":          {[]string{mod}, "has no Go API and must not know how the daemon works inside"},
	"node/wire/wirepb": {[]string{mod}, "knows nothing else"},
	"provisioning":     {m("board", "appliance", "=node", "node/peersync", "client"), "must not know about boards, systemd, the status page or what the appliance forgets on reset"},
}

// elsewhere are packages whose doc's line is a rule on other packages.
var elsewhere = map[string]string{
	"appliance": "the node packages never import it: nodeBelow, in every node/* rule",
}

// onlyTests are packages no non-test package may import.
var onlyTests = map[string]string{
	"status/statustest":         "must not be imported by non-test code",
	"update/cardtest":           "must not be imported by non-test code",
	"internal/testkit":          "for tests only",
	"internal/testkit/testhost": "for tests only",
	"internal/deptest":          "must not be imported",
}

type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

// doc is the package's whole doc comment (go list's Doc is only its first
// sentence).
func (p pkg) doc(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range p.GoFiles {
		af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if af.Doc != nil {
			b.WriteString(af.Doc.Text())
		}
	}
	return b.String()
}

// list is `go list` of every package in the module, with its transitive
// dependencies (Deps), as the default build for this machine sees them.
func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Name,Dir,GoFiles,Imports,Deps", mod+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; is the test run inside the module?", len(pkgs))
	}
	return pkgs
}

// forbids says whether the rule path bad forbids the import path dep.
func forbids(bad, dep string) bool {
	if exact, ok := strings.CutPrefix(bad, "="); ok {
		return dep == exact
	}
	return dep == bad || strings.HasPrefix(dep, bad+"/")
}

// violations lists each package's dependency that its rule forbids, and
// each import of a tests-only package by a non-test package.
func violations(pkgs []pkg, rules map[string]rule, onlyTests map[string]string) []string {
	var out []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		if r, ok := rules[rel]; ok {
			for _, dep := range p.Deps {
				for _, bad := range r.bad {
					if forbids(bad, dep) && dep != p.ImportPath {
						out = append(out, fmt.Sprintf("%s depends on %s, but it %s", rel, dep, r.why))
					}
				}
			}
		}
		for _, imp := range p.Imports {
			if why, ok := onlyTests[strings.TrimPrefix(imp, mod+"/")]; ok && strings.HasPrefix(imp, mod+"/") {
				out = append(out, fmt.Sprintf("%s imports %s, which is %s", rel, imp, why))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestMustNotKnow fails for every import that breaks a package doc's
// "must not know" line.
func TestMustNotKnow(t *testing.T) {
	for _, v := range violations(list(t), rules, onlyTests) {
		t.Error(v)
	}
}

// mustNot finds the sentences in a package doc that say what it must not
// know.
var mustNot = regexp.MustCompile(`(?i)must not (know|be imported|reach|construct)|knows nothing|nothing of the|never import`)

// TestEveryMustNotHasARule: a package doc that says what the package must
// not know has a rule here, and every rule names a package that exists.
func TestEveryMustNotHasARule(t *testing.T) {
	pkgs := list(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, mod), "/")
		seen[rel] = true
		if p.Name == "main" || rel == "internal/deptest" {
			continue
		}
		_, ruled := rules[rel]
		_, testOnly := onlyTests[rel]
		_, other := elsewhere[rel]
		if d := strings.ReplaceAll(p.doc(t), "\n", " "); mustNot.MatchString(d) && !ruled && !testOnly && !other {
			t.Errorf("%s: its doc says what it must not know (%q), but deptest has no rule for it", rel, mustNot.FindString(d))
		}
	}
	for rel := range rules {
		if !seen[rel] {
			t.Errorf("rule for %s, which go list does not find", rel)
		}
	}
}

// TestViolationsFindsABreach checks the checker itself on made-up
// packages: a forbidden transitive dependency, an exact rule that leaves
// the packages below alone, and a tests-only import.
func TestViolationsFindsABreach(t *testing.T) {
	pkgs := []pkg{
		{ImportPath: mod + "/node/store", Deps: []string{"bytes", mod + "/node/channel", mod + "/appliance/health"}},
		{ImportPath: mod + "/node/peersync", Deps: []string{libp2pRoot + "/core/host", mod + "/node/store"}},
		{ImportPath: mod + "/node/wire", Imports: []string{mod + "/internal/testkit"}},
	}
	got := violations(pkgs, rules, onlyTests)
	want := []string{
		"node/store depends on " + mod + "/appliance/health, but it " + rules["node/store"].why,
		"node/wire imports " + mod + "/internal/testkit, which is for tests only",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
