package report

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	r := Report{Kind: KindUpdate, Text: "updated to 1.2-1 (from 1.1-1)", At: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC),
		Outcome: "updated", Version: "1.2-1", From: "1.1-1", Running: "1.2-1", Tries: 1}
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got != r {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"device ctl":   []byte(`D{"op":"device-join"}`),
		"bad json":     []byte("N{"),
		"no text":      []byte(`N{"kind":"update"}`),
		"too long":     append([]byte(`N{"kind":"update","text":"`), []byte(strings.Repeat("x", MaxBody))...),
		"prefix alone": []byte("N"),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrNotReport) {
			t.Errorf("%s: Decode = %v, want ErrNotReport", name, err)
		}
	}
	if _, err := Encode(Report{Kind: KindUpdate, Text: strings.Repeat("x", MaxBody)}); err == nil {
		t.Error("Encode accepted an oversized report")
	}
}
