package client

import (
	"bytes"
	"errors"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	for _, tc := range []struct {
		in, cc, want string
	}{
		{"+49 151 2345-6789", "", "+4915123456789"},
		{"0049 (151) 23456789", "", "+4915123456789"},
		{"0151/23456789", "49", "+4915123456789"},
		{"+1 (415) 555-0132", "49", "+14155550132"},
		{"07700 900123", "44", "+447700900123"},
		{"0151 23", "49", ""},             // too short
		{"+49 151 2345678901234", "", ""}, // too long
		{"0151 23456789", "", ""},         // national without a country code
		{"151 23456789", "49", ""},        // neither + nor 00 nor trunk 0
		{"+49 151 CALL ME", "", ""},       // letters
		{"+49 151 2345+6789", "", ""},     // + inside
		{"+0 151 23456789", "", ""},       // country code cannot start with 0
		{"0151 23456789", "0049", ""},     // bad country code
	} {
		got, err := NormalizePhone(tc.in, tc.cc)
		if tc.want == "" {
			if !errors.Is(err, ErrBadContact) {
				t.Errorf("%q: got %q, %v; want ErrBadContact", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{" Alice@Example.ORG ", "alice@example.org"},
		{"a.b+tag@example.org", "a.b+tag@example.org"},
		{"no-at-sign", ""},
		{"@example.org", ""},
		{"alice@localhost", ""},
		{"al ice@example.org", ""},
	} {
		got, err := NormalizeEmail(tc.in)
		if (tc.want == "") != (err != nil) || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestContactHash(t *testing.T) {
	a, _ := NormalizePhone("+49 151 23456789", "")
	b, _ := NormalizePhone("0151-234 567 89", "49")
	if ha, hb := ContactHash(a), ContactHash(b); !bytes.Equal(ha, hb) || len(ha) != 32 {
		t.Fatal("one number written two ways hashes differently")
	}
	if bytes.Equal(ContactHash("+4915123456789"), ContactHash("+4915123456788")) {
		t.Fatal("neighbouring numbers collide")
	}
	if bytes.Equal(ContactHash("+4915123456789"), ContactHash("4915123456789")) {
		t.Fatal("a number and an e-mail-kind input collide")
	}
}

// BenchmarkContactHash is one guess of a brute force over the number
// space (docs/CONTACTS.md multiplies it out).
func BenchmarkContactHash(b *testing.B) {
	for b.Loop() {
		ContactHash("+4915123456789")
	}
}
