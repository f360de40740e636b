package control

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestTags pins each tag's byte on the wire: changing one breaks every
// peer that runs an older build.
func TestTags(t *testing.T) {
	want := map[string]byte{"adverts": 1, "device": 'D', "serve": 'S', "node-report": 'N',
		"friend-path": 'F', "lookup-query": 'Q', "lookup-answer": 'A'}
	got := map[string]byte{}
	for tag, name := range names {
		got[name] = tag
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	if Name(0) != "" || Name('Z') != "" {
		t.Fatal("an undefined tag has a name")
	}
}

// TestServeListGolden pins the Serve body byte for byte (the node reads
// lists that devices of older builds posted).
func TestServeListGolden(t *testing.T) {
	for _, c := range []struct {
		l    ServeList
		wire string
	}{
		{ServeList{Channels: []string{"aa", "bb"}, Control: []string{"bb"}, At: 1700000000123}, `S{"channels":["aa","bb"],"control":["bb"],"at":1700000000123}`},
		{ServeList{Channels: []string{"aa"}, At: 5}, `S{"channels":["aa"],"at":5}`},
		{ServeList{}, `S{"channels":null,"at":0}`},
	} {
		b := EncodeServeList(c.l)
		if string(b) != c.wire {
			t.Fatalf("encoded %q, want %q", b, c.wire)
		}
		l, err := DecodeServeList(b)
		if err != nil || !reflect.DeepEqual(l, c.l) {
			t.Fatalf("decoded %q to %+v, %v; want %+v", b, l, err, c.l)
		}
	}
}

func TestServeListRefused(t *testing.T) {
	many := `"` + strings.Repeat(`a","`, MaxServeListIDs) + `a"`
	for _, c := range []struct{ name, body string }{
		{"empty", ""},
		{"tag only", "S"},
		{"other tag", `D{"channels":[]}`},
		{"not JSON", "S{"},
		{"wrong type", `S{"channels":"aa"}`},
		{"too long", "S" + strings.Repeat(" ", MaxServeList)},
		{"too many channels", `S{"channels":[` + many + `]}`},
		{"too many control", `S{"control":[` + many + `]}`},
	} {
		if _, err := DecodeServeList([]byte(c.body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestTable(t *testing.T) {
	var tb Table[*[]string]
	tb.On(Serve, func(got *[]string) { *got = append(*got, "serve") })
	tb.On(Adverts, func(got *[]string) { *got = append(*got, "adverts") })
	var got []string
	for _, b := range [][]byte{{'S', '{'}, {1}, {}, nil, {'D'}, {'Z', 1}} {
		tb.Dispatch(b, &got)
	}
	if !reflect.DeepEqual(got, []string{"serve", "adverts"}) {
		t.Fatalf("dispatched %v", got)
	}
	if string(tb.Tags()) != "\x01S" {
		t.Fatalf("tags %q", tb.Tags())
	}
	if tb.Dispatch([]byte{'Q'}, &got) || !tb.Dispatch([]byte{'S'}, &got) {
		t.Fatal("Dispatch does not say whether a handler took the body")
	}
	for name, f := range map[string]func(){
		"twice":     func() { tb.On(Serve, func(*[]string) {}) },
		"undefined": func() { tb.On('Z', func(*[]string) {}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: On did not panic", name)
				}
			}()
			f()
		}()
	}
}

// FuzzDecodeServeList: any body either decodes to a list that encodes and
// decodes to the same list, or is refused with ErrMalformed.
func FuzzDecodeServeList(f *testing.F) {
	f.Add([]byte(`S{"channels":["00"]}`))
	f.Add(EncodeServeList(ServeList{Channels: []string{"aa"}, Control: []string{"aa"}, At: 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeServeList(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again := EncodeServeList(l)
		l2, err := DecodeServeList(again)
		if err != nil && len(again) <= MaxServeList {
			t.Fatalf("%q decoded, its encoding %q does not: %v", b, again, err)
		}
		if err == nil && !reflect.DeepEqual(EncodeServeList(l2), again) {
			t.Fatalf("round trip changed %q", again)
		}
	})
}

func TestFriendAndLookupRefused(t *testing.T) {
	f := FriendFrame{Paths: 1}.Encode()
	q := ContactQuery{}.Encode()
	a := ContactAnswer{Sealed: make([]byte, LookupSealedSize)}.Encode()
	set := func(b []byte, i int, v byte) []byte { b = append([]byte(nil), b...); b[i] = v; return b }
	for name, err := range map[string]error{
		"frame short":    second(DecodeFriendFrame(f[:FriendPathHeader-1])),
		"frame long":     second(DecodeFriendFrame(append(f, make([]byte, MaxFriendPayload+1)...))),
		"frame tag":      second(DecodeFriendFrame(set(f, 0, 'Q'))),
		"frame version":  second(DecodeFriendFrame(set(f, 1, 2))),
		"frame hop":      second(DecodeFriendFrame(set(f, 2, 2))),
		"frame no paths": second(DecodeFriendFrame(set(f, 3, 0))),
		"frame paths":    second(DecodeFriendFrame(set(f, 3, MaxFriendPaths+1))),
		"query size":     second(DecodeContactQuery(q[1:])),
		"query tag":      second(DecodeContactQuery(set(q, 0, 'A'))),
		"query version":  second(DecodeContactQuery(set(q, 1, 2))),
		"answer size":    second(DecodeContactAnswer(append(a, 0))),
		"answer tag":     second(DecodeContactAnswer(set(a, 0, 'Q'))),
		"answer version": second(DecodeContactAnswer(set(a, 1, 2))),
	} {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	for _, b := range [][]byte{f, q, a} {
		if Name(b[0]) == "" {
			t.Fatalf("encoded body starts with undefined tag %#x", b[0])
		}
	}
}

func second[T any](_ T, err error) error { return err }

// FuzzFriendAndLookup: any body either decodes to a frame, query or
// answer that encodes back to the same bytes, or is refused with
// ErrMalformed.
func FuzzFriendAndLookup(f *testing.F) {
	f.Add(FriendFrame{Paths: 2, Payload: []byte{1}}.Encode())
	f.Add(ContactQuery{}.Encode())
	f.Add(ContactAnswer{Sealed: make([]byte, LookupSealedSize)}.Encode())
	check := func(t *testing.T, b, again []byte, err error) {
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if string(again) != string(b) {
			t.Fatalf("round trip: %x -> %x", b, again)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFriendFrame(b)
		check(t, b, fr.Encode(), err)
		q, err := DecodeContactQuery(b)
		check(t, b, q.Encode(), err)
		a, err := DecodeContactAnswer(b)
		check(t, b, a.Encode(), err)
	})
}
