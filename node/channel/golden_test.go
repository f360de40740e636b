package channel

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

const goldenPath = "testdata/vectors.json"

// vectors pins the key derivation, the key strings and the envelope
// encoding: a change to any of them shows up as a diff here.
type vectors struct {
	Comment   string            `json:"comment"`
	Seed      byte              `json:"rand_seed"`
	NowMillis int64             `json:"now_ms"`
	Root      string            `json:"root_secret"`
	Channel   string            `json:"channel_id"`
	Keys      map[string]string `json:"keys"`
	Identity  string            `json:"author_identity"`
	Legacy    legacyVector      `json:"legacy"`
	Envelopes []envelopeVector  `json:"envelopes"`
}

type legacyVector struct {
	Pr        string `json:"pr"`
	Pu        string `json:"pu"`
	PublicHex string `json:"secp256k1_public"`
	Channel   string `json:"imported_channel_id"`
}

type envelopeVector struct {
	Writer   string `json:"writer"`
	Kind     string `json:"kind"`
	Body     string `json:"body"`
	Envelope string `json:"envelope,omitempty"`
	ID       string `json:"message_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

func makeVectors(t *testing.T) vectors {
	const seed = 42
	r := detRand(seed)
	full, err := NewKey(r)
	if err != nil {
		t.Fatal(err)
	}
	author, err := NewIdentity(r)
	if err != nil {
		t.Fatal(err)
	}
	read, _ := full.ReadOnly()
	write, _ := full.WriteOnly()
	l, _ := ParseLegacy(paperKey)
	imported, _ := ParseKey(paperKey)
	v := vectors{
		Comment:   "channel golden vectors; regenerate with go test ./node/channel -update",
		Seed:      seed,
		NowMillis: testNow.UnixMilli(),
		Root:      hex.EncodeToString(full.Secret()),
		Channel:   full.ID().String(),
		Keys:      map[string]string{"full": full.String(), "read": read.String(), "write": write.String()},
		Identity:  author.Public().String(),
		Legacy:    legacyVector{Pr: paperKey, Pu: l.PublicString(), PublicHex: hex.EncodeToString(l.Public), Channel: imported.ID().String()},
	}
	for _, k := range []*Key{full, read, write} {
		body := "sealed by a " + k.Capability().String() + " key"
		ev := envelopeVector{Writer: k.Capability().String(), Kind: KindText.String(), Body: body}
		e, err := k.Seal(author, KindText, []byte(body), testNow, r)
		if err != nil {
			ev.Error = err.Error()
		} else {
			raw, _ := e.MarshalBinary()
			ev.Envelope = hex.EncodeToString(raw)
			ev.ID = e.ID().String()
		}
		v.Envelopes = append(v.Envelopes, ev)
	}
	return v
}

func TestGoldenVectors(t *testing.T) {
	got, err := json.MarshalIndent(makeVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(filepath.FromSlash(goldenPath), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(goldenPath))
	if err != nil {
		t.Fatalf("%v (run go test ./node/channel -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("golden vectors changed; if intended, run go test ./node/channel -update\ngot:\n%s", got)
	}

	// Independently of regeneration: the stored strings and envelopes
	// still parse, validate and open.
	var v vectors
	if err := json.Unmarshal(want, &v); err != nil {
		t.Fatal(err)
	}
	keys := map[string]*Key{}
	for name, s := range v.Keys {
		k, err := ParseKey(s)
		if err != nil || k.ID().String() != v.Channel {
			t.Fatalf("%s key %q: %v", name, s, err)
		}
		keys[name] = k
	}
	for _, ev := range v.Envelopes {
		if ev.Envelope == "" {
			if ev.Writer != "read" {
				t.Fatalf("%s writer has no envelope", ev.Writer)
			}
			continue
		}
		raw, _ := hex.DecodeString(ev.Envelope)
		e, err := UnmarshalEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(e, testNow, Policy{}); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []string{"full", "read"} {
			m, err := keys[reader].Open(e)
			if err != nil || string(m.Body) != ev.Body || m.ID.String() != ev.ID || m.Author.String() != v.Identity {
				t.Fatalf("%s envelope, %s reader: %v", ev.Writer, reader, err)
			}
		}
	}
}
