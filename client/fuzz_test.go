package client

import (
	"bytes"
	"testing"
)

// FuzzDecodeReceipt: a receipt body comes from any channel member; it
// decodes to whole message IDs or fails, never panics, and round-trips.
func FuzzDecodeReceipt(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1}, 32))
	f.Add(bytes.Repeat([]byte{2}, 64))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{3}, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeReceipt(b)
		if err != nil {
			return
		}
		if len(ids) == 0 || len(ids) > maxReceiptIDs {
			t.Fatalf("%d IDs accepted", len(ids))
		}
		var back []byte
		for _, id := range ids {
			back = append(back, id[:]...)
		}
		if !bytes.Equal(back, b) {
			t.Fatal("receipt does not round-trip")
		}
	})
}
