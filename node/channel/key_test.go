package channel

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestCapabilities(t *testing.T) {
	c := newTestChannel(t, 1)
	tests := []struct {
		key       *Key
		cap       Capability
		read      bool
		write     bool
		prefix    string
		readOnly  error
		writeOnly error
	}{
		{c.full, CapabilityFull, true, true, PrefixFull, nil, nil},
		{c.read, CapabilityRead, true, false, PrefixRead, nil, ErrCannotWrite},
		{c.write, CapabilityWrite, false, true, PrefixWrite, ErrCannotRead, nil},
	}
	for _, tt := range tests {
		t.Run(tt.cap.String(), func(t *testing.T) {
			k := tt.key
			if k.Capability() != tt.cap || k.CanRead() != tt.read || k.CanWrite() != tt.write {
				t.Fatalf("got %s read=%v write=%v", k.Capability(), k.CanRead(), k.CanWrite())
			}
			if k.ID() != c.full.ID() {
				t.Fatalf("channel ID %s, want %s", k.ID(), c.full.ID())
			}
			s := k.String()
			if !strings.HasPrefix(s, tt.prefix) {
				t.Fatalf("key string %q lacks prefix %q", s, tt.prefix)
			}
			back, err := ParseKey(s)
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", s, err)
			}
			if !back.Equal(k) || back.ID() != k.ID() || back.Capability() != tt.cap {
				t.Fatalf("round trip changed the key")
			}
			ro, err := k.ReadOnly()
			if !errors.Is(err, tt.readOnly) {
				t.Fatalf("ReadOnly: %v, want %v", err, tt.readOnly)
			}
			if err == nil && !ro.Equal(c.read) {
				t.Fatalf("ReadOnly derived %s, want %s", ro, c.read)
			}
			wo, err := k.WriteOnly()
			if !errors.Is(err, tt.writeOnly) {
				t.Fatalf("WriteOnly: %v, want %v", err, tt.writeOnly)
			}
			if err == nil && !wo.Equal(c.write) {
				t.Fatalf("WriteOnly derived %s, want %s", wo, c.write)
			}
		})
	}
}

func TestDerivedKeysAreDistinct(t *testing.T) {
	c := newTestChannel(t, 2)
	root := c.full.Secret()
	parts := map[string][]byte{
		"root":       root,
		"read":       c.full.readKey[:],
		"write seed": c.full.write.Seed(),
		"seal priv":  c.full.sealPriv.Bytes(),
		"seal pub":   c.full.sealPub.Bytes(),
		"channel":    c.full.id[:],
	}
	seen := map[string]string{}
	for name, b := range parts {
		if prev, ok := seen[string(b)]; ok {
			t.Fatalf("%s equals %s", name, prev)
		}
		seen[string(b)] = name
	}
	if c.read.Secret() != nil || c.write.Secret() != nil {
		t.Fatal("a weaker capability exposes the root secret")
	}
	if !bytes.Equal(c.read.sealPriv.Bytes(), c.full.sealPriv.Bytes()) {
		t.Fatal("read-only sealing key differs from the full key's")
	}
}

func TestShare(t *testing.T) {
	c := newTestChannel(t, 3)
	tests := []struct {
		from    *Key
		to      Capability
		want    *Key
		wantErr bool
	}{
		{c.full, CapabilityRead, c.read, false},
		{c.full, CapabilityWrite, c.write, false},
		{c.full, CapabilityFull, c.full, false},
		{c.read, CapabilityRead, c.read, false},
		{c.read, CapabilityWrite, nil, true},
		{c.read, CapabilityFull, nil, true},
		{c.write, CapabilityWrite, c.write, false},
		{c.write, CapabilityRead, nil, true},
		{c.write, CapabilityFull, nil, true},
		{c.full, Capability(9), nil, true},
	}
	for _, tt := range tests {
		got, err := tt.from.Share(tt.to)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s.Share(%s): err %v, want error %v", tt.from.Capability(), tt.to, err, tt.wantErr)
		}
		if err == nil && !got.Equal(tt.want) {
			t.Fatalf("%s.Share(%s) = %s, want %s", tt.from.Capability(), tt.to, got, tt.want)
		}
	}
}

func TestPaperLegacyKey(t *testing.T) {
	l, err := ParseLegacy(paperKey)
	if err != nil {
		t.Fatalf("ParseLegacy(paper example): %v", err)
	}
	const wantPriv = "7ade0dbfd1817bd34628f54486de63aac25a32dd085ed7624fa482d65d64195d"
	if hex.EncodeToString(l.Private) != wantPriv {
		t.Fatalf("private key %x, want %s", l.Private, wantPriv)
	}
	if len(l.Public) != 33 || (l.Public[0] != 2 && l.Public[0] != 3) {
		t.Fatalf("public key %x is not a compressed point", l.Public)
	}
	if l.String() != paperKey {
		t.Fatalf("String() = %q, want the input back", l.String())
	}
	pu := l.PublicString()
	if !strings.HasPrefix(pu, PrefixLegacyPublic) {
		t.Fatalf("pu string %q", pu)
	}
	lp, err := ParseLegacy(pu)
	if err != nil {
		t.Fatalf("ParseLegacy(%q): %v", pu, err)
	}
	if !bytes.Equal(lp.Public, l.Public) || lp.Private != nil {
		t.Fatalf("pu round trip: %x, want %x", lp.Public, l.Public)
	}
	if _, err := ParseKey(pu); !errors.Is(err, ErrBadKey) {
		t.Fatalf("ParseKey(pu) = %v, want ErrBadKey", err)
	}

	// Import: the pr body becomes the root secret of a v2 channel.
	k, err := ParseKey(paperKey)
	if err != nil {
		t.Fatalf("ParseKey(paper example): %v", err)
	}
	want, _ := KeyFromSecret(l.Private)
	if k.Capability() != CapabilityFull || !k.Equal(want) {
		t.Fatalf("import gave %s %s, want full %s", k.Capability(), k, want)
	}
}

// TestPaperKeyEverySingleCharacterChange changes every character of the
// paper's example to every other character that could plausibly be typed
// and checks that each change is rejected with the error that names it.
func TestPaperKeyEverySingleCharacterChange(t *testing.T) {
	candidates := base58Alphabet + "0OIl+/ -_é"
	for i, orig := range paperKey {
		for _, r := range candidates {
			if r == orig {
				continue
			}
			s := paperKey[:i] + string(r) + paperKey[i+1:]
			_, errL := ParseLegacy(s)
			_, errK := ParseKey(s)
			if errL == nil || errK == nil {
				t.Fatalf("position %d changed to %q: accepted %q", i+1, r, s)
			}
			var want error
			switch {
			case i < 2 && s[:2] != PrefixLegacyPrivate && s[:2] != PrefixLegacyPublic && !strings.HasPrefix(s, "rp"):
				want = ErrUnknownPrefix
			case i >= 2 && !strings.ContainsRune(base58Alphabet, r):
				want = ErrInvalidCharacter
				if !strings.Contains(errK.Error(), "position "+strconv.Itoa(i+1)) {
					t.Fatalf("position %d: error %q does not name the position", i+1, errK)
				}
			}
			if want != nil && !errors.Is(errK, want) {
				t.Fatalf("position %d changed to %q: %v, want %v", i+1, r, errK, want)
			}
			if !errors.Is(errK, ErrUnknownPrefix) && !errors.Is(errK, ErrInvalidCharacter) &&
				!errors.Is(errK, ErrChecksum) && !errors.Is(errK, ErrKeyLength) {
				t.Fatalf("position %d changed to %q: unclear error %v", i+1, r, errK)
			}
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	c := newTestChannel(t, 4)
	full := c.full.String()
	tests := []struct {
		name string
		in   string
		want error
		msg  string
	}{
		{"empty", "", ErrUnknownPrefix, "unknown prefix"},
		{"unknown prefix", "xx" + full[3:], ErrUnknownPrefix, `"xx`},
		{"invalid char", full[:5] + "0" + full[6:], ErrInvalidCharacter, "'0' at position 6"},
		{"non-ascii", full[:7] + "é" + full[8:], ErrInvalidCharacter, "'é' at position 8"},
		{"space", full + " ", ErrInvalidCharacter, "position " + strconv.Itoa(len(full)+1)},
		{"truncated", full[:len(full)-3], ErrKeyLength, "want 36"},
		{"extended", full + "2", ErrChecksum, "mistyped"},
		{"hint too long", encodeKeyString(PrefixFull, make([]byte, SecretSize+MaxHintBytes+1), checksumV2), ErrKeyLength, "want 36 to 196"},
		{"too long", full + strings.Repeat("2", 300), ErrKeyLength, "longer than any key string"},
		{"identity with a hint", encodeKeyString(PrefixIdentity, make([]byte, 33), checksumV2), ErrKeyLength, "want 36"},
		{"checksum", full[:len(full)-1] + string(next(full[len(full)-1])), ErrChecksum, "mistyped"},
		{"prefix swap", PrefixRead + full[3:], ErrKeyLength, "read-only"},
		{"identity", c.author.Public().String(), ErrBadKey, "not a channel key"},
		{"pu", mustLegacy(t).PublicString(), ErrBadKey, "grants no access"},
		{"pr out of range", encodeKeyString(PrefixLegacyPrivate, bytes.Repeat([]byte{0xff}, 32), checksumLegacy), ErrBadKey, "[1, n-1]"},
		{"pr zero", encodeKeyString(PrefixLegacyPrivate, make([]byte, 32), checksumLegacy), ErrBadKey, "[1, n-1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseKey(%q) = %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseLegacyRejectsV2AndBadPoints(t *testing.T) {
	c := newTestChannel(t, 5)
	if _, err := ParseLegacy(c.full.String()); !errors.Is(err, ErrUnknownPrefix) {
		t.Fatalf("ParseLegacy(v2) = %v", err)
	}
	bad := append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...) // x >= p: not on the curve
	if _, err := ParseLegacy(encodeKeyString(PrefixLegacyPublic, bad, checksumLegacy)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("ParseLegacy(bad pu) = %v", err)
	}
}

func TestIdentityString(t *testing.T) {
	id, err := NewIdentity(detRand(6))
	if err != nil {
		t.Fatal(err)
	}
	s := id.Public().String()
	back, err := ParseIdentityKey(s)
	if err != nil || back != id.Public() {
		t.Fatalf("ParseIdentityKey(%q) = %v, %v", s, back, err)
	}
	if _, err := ParseIdentityKey(newTestChannel(t, 6).full.String()); !errors.Is(err, ErrUnknownPrefix) {
		t.Fatalf("ParseIdentityKey(full key) = %v", err)
	}
	again, _ := IdentityFromSeed(id.Seed())
	if again.Public() != id.Public() {
		t.Fatal("IdentityFromSeed does not restore the identity")
	}
	sig := id.Sign("test\x00", []byte("m"))
	if !id.Public().Verify("test\x00", []byte("m"), sig) || id.Public().Verify("other\x00", []byte("m"), sig) {
		t.Fatal("domain-separated signature check failed")
	}
}

func mustLegacy(t *testing.T) *LegacyKey {
	t.Helper()
	l, err := ParseLegacy(paperKey)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// next returns another Base58 character.
func next(c byte) byte {
	i := strings.IndexByte(base58Alphabet, c)
	return base58Alphabet[(i+1)%len(base58Alphabet)]
}

func FuzzParseKey(f *testing.F) {
	c := newTestChannel(f, 7)
	for _, s := range []string{paperKey, mustLegacyF(f).PublicString(), c.full.String(), c.read.String(),
		c.write.String(), c.author.Public().String(), "", "pr", "rpf1", "rpf0OIl"} {
		f.Add(s)
	}
	hinted, _ := c.read.StringWithHint(bytes.Repeat([]byte{1}, 39))
	f.Add(hinted)
	f.Fuzz(func(t *testing.T, s string) {
		k, hint, err := ParseKeyHint(s)
		if err == nil {
			if len(hint) > MaxHintBytes {
				t.Fatalf("ParseKeyHint(%q): hint of %d bytes", s, len(hint))
			}
			again, herr := k.StringWithHint(hint)
			if strings.HasPrefix(s, PrefixLegacyPrivate) {
				l, lerr := ParseLegacy(s)
				if lerr != nil || l.String() != s {
					t.Fatalf("ParseKey accepted %q but ParseLegacy: %v", s, lerr)
				}
			} else if herr != nil || again != s {
				t.Fatalf("ParseKeyHint(%q) re-encodes as %q (%v)", s, again, herr)
			}
		}
		if l, err := ParseLegacy(s); err == nil && l.String() != s {
			t.Fatalf("ParseLegacy(%q).String() = %q", s, l.String())
		}
		if p, err := ParseIdentityKey(s); err == nil && p.String() != s {
			t.Fatalf("ParseIdentityKey(%q).String() = %q", s, p.String())
		}
	})
}

func mustLegacyF(f *testing.F) *LegacyKey {
	l, err := ParseLegacy(paperKey)
	if err != nil {
		f.Fatal(err)
	}
	return l
}

func TestParseID(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i * 7)
	}
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %v, %v", id, got, err)
	}
	for _, bad := range []string{"", "00", id.String() + "00", "zz" + id.String()[2:]} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	m := MessageID(id)
	if got, err := ParseMessageID(m.String()); err != nil || got != m {
		t.Fatalf("ParseMessageID = %v, %v", got, err)
	}
}

// TestKeyStringHint: every capability carries opaque hint bytes up to
// MaxHintBytes; ParseKey reads the same key with or without them, and
// ParseKeyHint returns them as they were.
func TestKeyStringHint(t *testing.T) {
	c := newTestChannel(t, 6)
	hint := bytes.Repeat([]byte{0xa5}, 39)
	for _, k := range []*Key{c.full, c.read, c.write} {
		s, err := k.StringWithHint(hint)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, k.String()[:3]) || len(s) <= len(k.String()) {
			t.Fatalf("%s: hinted %q, plain %q", k.Capability(), s, k.String())
		}
		got, h, err := ParseKeyHint(s)
		if err != nil || !got.Equal(k) || !bytes.Equal(h, hint) {
			t.Fatalf("%s: ParseKeyHint = %v, %x, %v", k.Capability(), got, h, err)
		}
		if got, err := ParseKey(s); err != nil || !got.Equal(k) {
			t.Fatalf("%s: ParseKey of a hinted string = %v, %v", k.Capability(), got, err)
		}
		if _, h, err := ParseKeyHint(k.String()); err != nil || h != nil {
			t.Fatalf("%s: a plain string has hint %x, %v", k.Capability(), h, err)
		}
		if same, _ := k.StringWithHint(nil); same != k.String() {
			t.Fatalf("%s: an empty hint changed the string", k.Capability())
		}
		max, err := k.StringWithHint(make([]byte, MaxHintBytes))
		if err != nil || len(max) > maxKeyString {
			t.Fatalf("%s: largest hint: %d characters (bound %d), %v", k.Capability(), len(max), maxKeyString, err)
		}
		if _, _, err := ParseKeyHint(max); err != nil {
			t.Fatalf("%s: largest hint: %v", k.Capability(), err)
		}
		if _, err := k.StringWithHint(make([]byte, MaxHintBytes+1)); err == nil {
			t.Fatalf("%s: a hint over the bound was encoded", k.Capability())
		}
	}
}
