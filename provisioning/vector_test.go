package provisioning

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

var update = flag.Bool("update", false, "rewrite testdata/proof-vector.txt")

// TestProofVector pins the proof computation of docs/PAIRING.md to a
// golden vector that a phone implementation can check itself against.
func TestProofVector(t *testing.T) {
	u := typicalURI()
	node, err := u.PeerID()
	if err != nil {
		t.Fatal(err)
	}
	phoneSK, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	phone, _ := peer.IDFromPrivateKey(phoneSK)
	owner := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0b}, 32))
	var nn, pn [NonceSize]byte
	copy(nn[:], bytes.Repeat([]byte{0x11}, NonceSize))
	copy(pn[:], bytes.Repeat([]byte{0x22}, NonceSize))
	tr, err := transcript(node, phone, nn, pn, owner.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	k := DeriveTokenKey(u.Token)
	mac := proofMAC(k, tr)
	pr := Proof{PhoneNonce: pn, Owner: owner.Public().(ed25519.PublicKey), MAC: mac}
	copy(pr.Sig[:], ed25519.Sign(owner, sigMessage(tr)))
	lines := []string{
		"uri: " + u.String(),
		"node_peer_id: " + node.String(),
		"node_peer_id_bytes: " + hex.EncodeToString([]byte(node)),
		"phone_peer_id: " + phone.String(),
		"phone_peer_id_bytes: " + hex.EncodeToString([]byte(phone)),
		"token: " + hex.EncodeToString(u.Token[:]),
		"token_key: " + hex.EncodeToString(k[:]),
		"owner_seed: " + strings.Repeat("0b", 32),
		"owner_public_key: " + hex.EncodeToString(pr.Owner),
		"node_nonce: " + hex.EncodeToString(nn[:]),
		"phone_nonce: " + hex.EncodeToString(pn[:]),
		"transcript: " + hex.EncodeToString(tr),
		"mac: " + hex.EncodeToString(mac[:]),
		"sig: " + hex.EncodeToString(pr.Sig[:]),
		fmt.Sprintf("proof_frame: %04x%s", proofSize, hex.EncodeToString(pr.marshal())),
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "proof-vector.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("proof computation changed; docs/PAIRING.md and phones depend on it.\ngot:\n%s\nwant:\n%s", got, want)
	}
}
