package provisioning

import (
	"bytes"
	"testing"
)

func FuzzParseURI(f *testing.F) {
	f.Add(typicalURI().String())
	f.Add("rppair1:" + typicalURI().String()[8:] + "+Q[2001:DB8::1]:4001")
	f.Add("RPPAIR1://T1.2.3.4:1")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		// One meaning, one spelling: the canonical form parses to itself.
		c := u.String()
		u2, err := ParseURI(c)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", c, s, err)
		}
		if u2.String() != c {
			t.Fatalf("not stable: %q -> %q", c, u2.String())
		}
		if _, err := u.PeerID(); err != nil {
			t.Fatalf("parsed URI has no peer ID: %v", err)
		}
	})
}

// FuzzFrames covers every decoder of node and phone messages.
func FuzzFrames(f *testing.F) {
	var b bytes.Buffer
	writeFrame(&b, (&Proof{Owner: make([]byte, 32)}).marshal())
	f.Add(b.Bytes())
	b.Reset()
	writeFrame(&b, marshalChallenge([NonceSize]byte{1}))
	f.Add(b.Bytes())
	f.Add([]byte{0, 2, msgResult, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := readFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(body) == 0 || len(body) > MaxFrame {
			t.Fatalf("frame of %d bytes accepted", len(body))
		}
		if p, err := decodeProof(body); err == nil && !bytes.Equal(p.marshal(), body) {
			t.Fatalf("proof does not re-encode to its input")
		}
		if n, err := decodeChallenge(body); err == nil && !bytes.Equal(marshalChallenge(n), body) {
			t.Fatalf("challenge does not re-encode to its input")
		}
		if st, err := decodeResult(body); err == nil {
			_ = st.err()
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(record{state: StateWaiting}.marshal())
	f.Add(record{state: StateOwned, owner: make([]byte, 32)}.marshal())
	f.Add(record{state: StateResetting, renew: true, oldPeer: "abc"}.marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeRecord(in)
		if err != nil {
			return
		}
		if !bytes.Equal(r.marshal(), in) {
			t.Fatalf("record %x re-encodes to %x", in, r.marshal())
		}
	})
}
