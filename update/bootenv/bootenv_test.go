package bootenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	env := Env{"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "0", "EMPTY": ""}
	b, err := Encode(env, DefaultSize, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != DefaultSize {
		t.Fatalf("encoded %d bytes, want %d", len(b), DefaultSize)
	}
	got, flags, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if flags != 7 || !maps.Equal(got, env) {
		t.Errorf("Decode = %v flags %d, want %v flags 7", got, flags, env)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, env := range map[string]Env{
		"empty name":   {"": "x"},
		"= in name":    {"A=B": "x"},
		"NUL in value": {"A": "x\x00y"},
		"too big":      {"A": string(bytes.Repeat([]byte{'x'}, DefaultSize))},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Encode(env, DefaultSize, 0); !errors.Is(err, ErrMalformed) {
				t.Errorf("Encode = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, _ := Encode(Env{"A": "1"}, 64, 0)
	flipped := bytes.Clone(good)
	flipped[10] ^= 1
	// Valid CRCs over bad data.
	reCRC := func(data []byte) []byte {
		b := make([]byte, 64)
		copy(b[headerSize:], data)
		return withCRC(b)
	}
	for name, tt := range map[string]struct {
		b    []byte
		want error
	}{
		"flipped":     {flipped, ErrBadCRC},
		"zeros":       {make([]byte, 64), ErrBadCRC},
		"short":       {good[:4], ErrMalformed},
		"no equals":   {reCRC([]byte("ABC\x00\x00")), ErrMalformed},
		"no end":      {reCRC(bytes.Repeat([]byte{'x'}, 59)), ErrMalformed},
		"empty name":  {reCRC([]byte("=1\x00\x00")), ErrMalformed},
		"unterminate": {reCRC(append([]byte("A=1\x00"), bytes.Repeat([]byte{'y'}, 55)...)), ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Decode(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

// withCRC sets the CRC of a copy to match its data.
func withCRC(b []byte) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c, crc32.ChecksumIEEE(c[headerSize:]))
	return c
}

// TestMkenvimage: U-Boot's own tool (u-boot-tools) makes the same bytes.
func TestMkenvimage(t *testing.T) {
	tool, err := exec.LookPath("mkenvimage")
	if err != nil {
		t.Skip("mkenvimage not installed (apt-get install u-boot-tools; make update-test does it as root)")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "env.txt")
	// mkenvimage keeps the input's order; ours is sorted.
	if err := os.WriteFile(in, []byte("BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "env.bin")
	if b, err := exec.Command(tool, "-r", "-p", "0", "-s", fmt.Sprint(DefaultSize), "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("mkenvimage: %v\n%s", err, b)
	}
	theirs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env, flags, err := Decode(theirs)
	if err != nil {
		t.Fatalf("Decode(mkenvimage's copy): %v", err)
	}
	want := Env{"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "0"}
	if !maps.Equal(env, want) {
		t.Errorf("decoded %v, want %v", env, want)
	}
	ours, err := Encode(want, DefaultSize, flags)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Errorf("Encode differs from mkenvimage -r -p 0 (first bytes ours %x, theirs %x)", ours[:32], theirs[:32])
	}
}

func TestNewer(t *testing.T) {
	for _, tt := range []struct {
		a, b byte
		want bool
	}{{1, 0, true}, {0, 1, false}, {0, 255, true}, {255, 0, false}, {5, 5, false}, {130, 2, false}, {129, 2, true}} {
		if got := Newer(tt.a, tt.b); got != tt.want {
			t.Errorf("Newer(%d, %d) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// disk makes a file laid out like the image's gap: zeros around the copies.
func disk(t *testing.T) *Store {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, DefaultOffset1+DefaultSize+4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return Default(p)
}

func TestFreshDiskHasNoState(t *testing.T) {
	s := disk(t)
	st, err := s.Load()
	if !errors.Is(err, ErrNoValidCopy) {
		t.Fatalf("Load of a blank disk = %v, want ErrNoValidCopy", err)
	}
	// Saving over no valid state writes copy 0; it then loads.
	env := Env{"BOOT_ORDER": "A B"}
	if _, err := s.Save(st, env); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !maps.Equal(got.Env, env) || got.Current != 0 {
		t.Fatalf("after Save: %+v, %v", got, err)
	}
}

// TestSaveAlternatesAndWraps: many saves alternate between the copies and
// the flags wrap past 255 with the newest state always winning.
func TestSaveAlternatesAndWraps(t *testing.T) {
	s := disk(t)
	if err := s.Init(Env{"N": "0"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 1 || st.Env["N"] != "0" {
		t.Fatalf("after Init: current %d env %v", st.Current, st.Env)
	}
	for i := 1; i <= 300; i++ {
		prev := st.Current
		if _, err := s.Save(st, Env{"N": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if st, err = s.Load(); err != nil {
			t.Fatal(err)
		}
		if st.Env["N"] != fmt.Sprint(i) || st.Current == prev {
			t.Fatalf("save %d: loaded %v from copy %d (previous copy %d)", i, st.Env, st.Current, prev)
		}
	}
}

// TestTornWrite cuts the write of a new state after every possible prefix
// length (in steps, and around the header) on a real file: the loaded
// state is always the old or the new one, never anything else, and the old
// one until the header is complete.
func TestTornWrite(t *testing.T) {
	oldEnv := Env{"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}
	newEnv := Env{"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "1", "BOOT_TRIAL": "B"}
	olderEnv := Env{"BOOT_ORDER": "A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "0"}
	var lengths []int
	for k := 0; k <= 64; k++ {
		lengths = append(lengths, k)
	}
	for k := 65; k < DefaultSize; k += 509 {
		lengths = append(lengths, k)
	}
	lengths = append(lengths, DefaultSize-1, DefaultSize)
	for _, k := range lengths {
		s := disk(t)
		if err := s.Init(olderEnv); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Load()
		st, err := s.Save(st, oldEnv)
		if err != nil {
			t.Fatal(err)
		}
		// The torn write of newEnv: only its first k bytes reach the disk.
		b, err := Encode(newEnv, s.Size, st.Flags+1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(s.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b[:k], s.Offsets[1-st.Current]); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := s.Load()
		if err != nil {
			t.Fatalf("prefix %d: %v", k, err)
		}
		switch {
		case maps.Equal(got.Env, newEnv):
			if k < headerSize {
				t.Errorf("prefix %d: the new state won before its header was written", k)
			}
		case maps.Equal(got.Env, oldEnv):
			if k == DefaultSize {
				t.Errorf("complete write: still the old state")
			}
		default:
			t.Errorf("prefix %d: loaded %v, neither the old nor the new state", k, got.Env)
		}
	}
}

// TestFlippedBytes flips single bits in the current copy at random
// places: the state loaded is the previous complete one (or, for a flip in
// the flags byte that the CRC does not cover, one of the two).
func TestFlippedBytes(t *testing.T) {
	oldEnv := Env{"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3"}
	newEnv := Env{"BOOT_ORDER": "B A", "BOOT_B_LEFT": "3"}
	r := rand.New(rand.NewPCG(1, 2))
	positions := []int{0, 3, 4, 5, 6, 20, DefaultSize - 1}
	for range 40 {
		positions = append(positions, r.IntN(DefaultSize))
	}
	for _, pos := range positions {
		s := disk(t)
		if err := s.Init(oldEnv); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Load()
		st, err := s.Save(st, newEnv)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(s.Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		off := s.Offsets[st.Current] + int64(pos)
		one := make([]byte, 1)
		f.ReadAt(one, off)
		one[0] ^= 1 << r.IntN(8)
		f.WriteAt(one, off)
		f.Close()
		got, err := s.Load()
		if err != nil {
			t.Fatalf("flip at %d: %v", pos, err)
		}
		if pos == 4 {
			if !maps.Equal(got.Env, oldEnv) && !maps.Equal(got.Env, newEnv) {
				t.Errorf("flip in flags: loaded %v", got.Env)
			}
			continue
		}
		if !maps.Equal(got.Env, oldEnv) {
			t.Errorf("flip at %d of the newer copy: loaded %v, want the older complete state %v", pos, got.Env, oldEnv)
		}
	}
}

// TestBothCopiesBad: both copies damaged is ErrNoValidCopy, not a guess.
func TestBothCopiesBad(t *testing.T) {
	s := disk(t)
	if err := s.Init(Env{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(s.Path, os.O_RDWR, 0)
	for _, off := range s.Offsets {
		f.WriteAt([]byte{0xde, 0xad}, off+100)
	}
	f.Close()
	if _, err := s.Load(); !errors.Is(err, ErrNoValidCopy) {
		t.Fatalf("Load = %v, want ErrNoValidCopy", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	s := Default(filepath.Join(t.TempDir(), "nope"))
	if _, err := s.Load(); err == nil {
		t.Fatal("Load of a missing device succeeded")
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, make([]byte, 1000), 0o644)
	if _, err := Default(short).Load(); err == nil {
		t.Fatal("Load of a device too short to hold the copies succeeded")
	}
}
