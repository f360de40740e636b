package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestPairCommandsMisuse: the pair and node commands refuse what cannot
// work before touching the network, saying why (in-process, no node).
func TestPairCommandsMisuse(t *testing.T) {
	dir := t.TempDir()
	h := filepath.Join(dir, "h")
	if _, _, err := runCLI("init", "--home", h); err != nil {
		t.Fatal(err)
	}
	const goodURI = "RPPAIR1:5JFGYY7CTRJAVPXVKB5RGLWF7GKUO5VOX27HXESCD3VGSFCG2IWA/UCQ2FI5EUWTKPKFJVKV2ZLNOV4/T192.168.178.23:4001"
	tests := []struct {
		args  []string
		usage bool
		msg   string
	}{
		{[]string{"pair", "--home", h}, true, "usage: redpanda pair URI"},
		{[]string{"pair", "a", "b", "--home", h}, true, "usage: redpanda pair URI"},
		{[]string{"pair", "RPPAIR1:nonsense", "--home", h}, false, "not a redPanda pairing code"},
		{[]string{"pair", strings.TrimSuffix(goodURI, ":4001"), "--home", h}, false, "not a redPanda pairing code"},
		{[]string{"pair", goodURI, "--home", filepath.Join(dir, "none")}, false, "run `redpanda init"},
		{[]string{"node", "status", "--home", h}, false, "pair one first"},
		{[]string{"node", "status", "not-a-peer", "--home", h}, true, "not a peer ID"},
		{[]string{"node", "status", "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7", "--home", h}, false, "is not known"},
		{[]string{"node", "status", "a", "b", "--home", h}, true, "usage: redpanda node status"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[:len(tc.args)-2], " "), func(t *testing.T) {
			_, _, err := runCLI(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || errors.Is(err, errUsage) != tc.usage {
				t.Fatalf("err = %v; want one saying %q (usage: %v)", err, tc.msg, tc.usage)
			}
		})
	}
}
