package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
	"golang.org/x/crypto/chacha20poly1305"
)

// TestControlTable: the client reads exactly these tags; node reports and
// serve lists are read by their channel, not by tag (handleControl).
func TestControlTable(t *testing.T) {
	want := []byte{control.Adverts, control.LookupAnswer, control.Device, control.FriendPath, control.LookupQuery}
	if got := controls.Tags(); !bytes.Equal(got, want) {
		t.Fatalf("tags %q, want %q", got, want)
	}
}

// TestControlSizes: node/control's fixed sizes are those of the client's
// cryptography.
func TestControlSizes(t *testing.T) {
	if control.LookupSealedSize != len(channel.IdentityKey{})+chacha20poly1305.Overhead || control.X25519Size != x25519Size ||
		control.LookupIDSize != 16 || len(channel.IdentityKey{}) != len(friendFrame{}.To) {
		t.Fatal("node/control's sizes differ from the client's")
	}
}

// TestControlGolden pins the client's control bodies byte for byte: a
// client of an older build reads them.
func TestControlGolden(t *testing.T) {
	z := func(n int) string { return strings.Repeat("00", n) }
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// 'F', version 1, hop, paths, seq, to, from, session, payload.
	f := friendFrame{Hop: 1, Paths: 2, Seq: 3, To: channel.IdentityKey{4}, From: channel.IdentityKey{5}, Session: [friendSessionSize]byte{6}, Payload: []byte("hi")}
	wantF := unhex("46" + "01" + "010203" + "04" + z(31) + "05" + z(31) + "06" + z(15) + "6869")
	if !bytes.Equal(f.Encode(), wantF) {
		t.Fatalf("friend frame %x, want %x", f.Encode(), wantF)
	}
	if got, err := decodeFriendFrame(wantF); err != nil || !bytes.Equal(got.Encode(), wantF) {
		t.Fatalf("friend frame golden: %v", err)
	}

	// 'Q', version 1, query ID, contact hash, one-time key.
	q := lookupQuery{ID: [lookupIDSize]byte{1}, Hash: [contactHashSize]byte{2}, Pub: [x25519Size]byte{3}}
	wantQ := unhex("51" + "01" + "01" + z(15) + "02" + z(31) + "03" + z(31))
	if !bytes.Equal(q.Encode(), wantQ) {
		t.Fatalf("lookup query %x, want %x", q.Encode(), wantQ)
	}
	if got, err := decodeLookupQuery(wantQ); err != nil || got != q {
		t.Fatalf("lookup query golden: %+v %v", got, err)
	}

	// 'A', version 1, query ID, one-time key, sealed identity (48 bytes).
	a := lookupAnswer{ID: [lookupIDSize]byte{1}, Pub: [x25519Size]byte{3}, Sealed: append([]byte{9}, make([]byte, 47)...)}
	wantA := unhex("41" + "01" + "01" + z(15) + "03" + z(31) + "09" + z(47))
	if !bytes.Equal(a.Encode(), wantA) {
		t.Fatalf("lookup answer %x, want %x", a.Encode(), wantA)
	}
	if got, err := decodeLookupAnswer(wantA); err != nil || !bytes.Equal(got.Encode(), wantA) {
		t.Fatalf("lookup answer golden: %v", err)
	}

	// 'D' and JSON, as postDevice writes it.
	dc := deviceControl{Op: "device-join", From: "p1", Peer: "p2", Name: "phone"}
	b, _ := json.Marshal(dc)
	wantD := `D{"op":"device-join","from":"p1","peer":"p2","name":"phone"}`
	if got := string(append([]byte{control.Device}, b...)); got != wantD {
		t.Fatalf("device control %s, want %s", got, wantD)
	}
	if got, err := decodeDeviceControl([]byte(wantD)); err != nil || got.Op != dc.Op || got.Peer != dc.Peer || got.Name != dc.Name || got.From != dc.From {
		t.Fatalf("device control golden: %+v %v", got, err)
	}
}
