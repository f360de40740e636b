package peersync

import (
	"testing"

	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// TestHandEncodedKinds: the kinds counted for frames queued already
// encoded are those frameKind gives the same frames.
func TestHandEncodedKinds(t *testing.T) {
	tests := []struct {
		kind int
		f    *wirepb.Frame
	}{
		{kindHello, &wirepb.Frame{Kind: &wirepb.Frame_Hello{}}},
		{kindAnnounce, &wirepb.Frame{Kind: &wirepb.Frame_Announce{}}},
		{kindBody, &wirepb.Frame{Kind: &wirepb.Frame_Body{}}},
		{kindPush, &wirepb.Frame{Kind: &wirepb.Frame_Push{}}},
	}
	for _, tc := range tests {
		if got := frameKind(tc.f); got != tc.kind {
			t.Errorf("%s: constant %d, frameKind %d", frameKinds[got], tc.kind, got)
		}
	}
}
